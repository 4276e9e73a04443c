"""`hfkit eval`: score a finished run (its adapter or model) or a recipe's model zero-shot.

A run is scored into `RUN/eval-<UTC time>/` (a run whose scoring failed after training is completed
in place instead); a recipe gets a new run folder whose record holds the scores as `baseline`
(nothing was trained). Scoring goes through the same Scorer as `hfkit train`, so `eval RECIPE`
equals the baseline inside `train`, and `eval RUN` equals the run's final scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hfkit import distributed, job, runs
from hfkit.console import console, results_table
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.record import RunRecord, has_record, read_record, recording_failure
from hfkit.redaction import redacted_yaml
from hfkit.training import create_run_dir


def evaluate(target: str, overrides: list[str], overwrite: bool = False,
             command: list[str] | None = None) -> tuple[Path, RunRecord]:
    """Score without training; returns the folder written and its record."""
    target_path = Path(target)
    is_run = runs.is_run_dir(target_path)
    recipe = load_recipe(target_path / runs.RECIPE if is_run else target_path, overrides)
    previous = read_record(target_path) if is_run and has_record(target_path) else None
    task = job.bind(recipe, previous.is_encoder_decoder if previous else None)
    weights = run_weights(target_path, recipe) if is_run else None
    completing = previous is not None and previous.status == "scoring_failed"
    if completing:
        out_dir = target_path
    elif is_run:
        out_dir = Path(distributed.broadcast(str(runs.fresh_path(target_path / f"eval-{runs.utc_stamp()}"))))
    else:
        out_dir = create_run_dir(recipe, overwrite)
    args = job.training_arguments(recipe, task, out_dir)
    base_path = job.materialize(recipe)
    is_main = distributed.is_main()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not is_run:
            runs.write_text(out_dir / runs.RECIPE, redacted_yaml(recipe))
    record = previous if completing else RunRecord(kind="eval", status="running", task=recipe.task,
                                                   method=recipe.peft.method if is_run else "zero-shot")
    with recording_failure(out_dir, record, is_main and not completing):
        prepared = job.prepare(recipe, task, str(weights) if weights else base_path, with_train=False)
        model = job.load_model(recipe, task, prepared.tokenizer, weights, train=False)
        trainer = job.make_trainer(args, prepared, model)
        scores = job.make_scorer(recipe, prepared, trainer).score(
            trainer.model, stream_to=out_dir / runs.PARTIAL_PREDICTIONS if is_main else None)
        environment = runs.env_info(args.seed, distributed.describe(trainer), command or sys.argv)
    if is_main:
        runs.write_jsonl(out_dir / runs.PREDICTIONS, scores.predictions)
        (out_dir / runs.PARTIAL_PREDICTIONS).unlink(missing_ok=True)
        scores.evaluation.predictions = runs.PREDICTIONS
        if completing:
            record.final, record.status, record.error = scores.evaluation, "complete", None
        else:
            record.update(job.describe(recipe, prepared))
            record.status = "evaluated"
            # A recipe's untrained model is a baseline; a finished run's model is a final result.
            setattr(record, "final" if is_run else "baseline", scores.evaluation)
            record.peak_memory_mb = runs.peak_memory_mb()
            runs.write_json(out_dir / runs.ENV, environment)
        record.write(out_dir)
        out_dir = runs.promote(out_dir)  # a staged (--overwrite) run now complete replaces the old one
        console.print(results_table(record.baseline if not is_run else None, record.final,
                                    title=f"{target}: {recipe.eval.split}"))
        console.print(f"Scores written to: {out_dir}")
    return out_dir, record


def run_weights(run_dir: Path, recipe) -> Path:
    """The run's adapter/ (LoRA) or model/ folder, checked to hold its weights."""
    adapter, model = run_dir / runs.ADAPTER, run_dir / runs.MODEL
    if recipe.peft.method == "lora":
        if not adapter.is_dir():
            raise HfkitError(f"{run_dir}: the run has no {runs.ADAPTER}/ folder (did training finish? "
                             f"hfkit train --resume {run_dir} continues it)")
        if not (adapter / "adapter_model.safetensors").is_file():
            raise HfkitError(f"{adapter}: adapter_model.safetensors is missing; the adapter was not completely "
                             "saved (train again, or resume from a checkpoint)")
        return adapter
    if not model.is_dir():
        raise HfkitError(f"{run_dir}: the run has no {runs.MODEL}/ folder (did training finish?)")
    return model
