"""`hfkit eval`: score a finished run (its adapter or model) or a recipe's model zero-shot.

A run is scored into `RUN/eval-<UTC time>/` (a run whose scoring failed, was interrupted or killed
after training saved its weights is completed in place instead); a recipe gets a new run folder
whose record holds the scores as `baseline` (nothing was trained). Scoring goes through the same Scorer as `hfkit train`, so `eval RECIPE`
equals the baseline inside `train`, and `eval RUN` equals the run's final scores.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hfkit import distributed, job, runs, session
from hfkit.console import console, results_table, say
from hfkit.errors import HfkitError, first_line
from hfkit.recipe import ignored_settings, load_recipe
from hfkit.record import RunRecord, has_record, read_record, recording_failure
from hfkit.scoring import count_warnings


@runs.releasing_locks
def evaluate(target: str, overrides: list[str], overwrite: bool = False,
             command: list[str] | None = None) -> tuple[Path, RunRecord]:
    """Score without training; returns the folder written and its record."""
    opened = session.open_target(target, overrides)
    target_path, is_run, recipe, previous, task, weights = (opened.path, opened.is_run, opened.recipe, opened.previous,
                                                           opened.task, opened.weights)
    for note in ignored_settings(recipe):
        say(f"[yellow]warning: {note}[/yellow]")
    job.check_hub_needs(recipe, task, training=False)
    job.check_model(recipe, task)  # before any weights load: lengths, and decoding against memory
    # training finished (its weights are saved) but its scoring failed, was interrupted or killed
    completing = previous is not None and previous.awaits_scoring
    if completing:
        out_dir = target_path
        if distributed.is_main():
            runs.lock_run(target_path)  # not while the process that trained it may still be scoring
    else:
        out_dir = session.output_folder(opened, "eval", overwrite)
    args = job.training_arguments(recipe, task, out_dir)
    base_path = job.materialize(recipe)
    is_main = distributed.is_main()
    if not completing:
        session.start_output(out_dir, opened)
    record = previous if completing else RunRecord(kind="eval", status="running", task=recipe.task,
                                                   method=recipe.peft.method if is_run else "zero-shot")
    with recording_failure(out_dir, record, is_main and not completing):
        prepared = job.prepare(recipe, task, str(weights) if weights else base_path, with_train=False)
        model = job.load_model(recipe, task, prepared.tokenizer, weights, train=False)
        trainer = job.make_trainer(args, prepared, model)
        try:
            scores = job.make_scorer(recipe, prepared, trainer).score(
                trainer.model, stream_to=out_dir / runs.PARTIAL_PREDICTIONS if is_main else None)
        except HfkitError:
            raise
        except Exception as err:  # a metric that cannot score these predictions (e.g. a metric/data mismatch)
            kept = f"; {target} is unchanged (status {previous.status})" if completing else ""
            raise HfkitError(f"scoring failed ({type(err).__name__}: {first_line(err)}){kept}; check "
                             "eval.metrics and eval.metric_args against the task and its data") from err
        environment = runs.env_info(args.seed, distributed.describe(trainer), command or sys.argv)
    notes = [*prepared.notes, *count_warnings(scores.evaluation, recipe.eval.split, len(prepared.eval.rows))]
    for note in notes:
        say(f"[yellow]{note}[/yellow]")
    if is_main:
        scores.keep(out_dir, runs.PREDICTIONS)
        if completing:
            record.final, record.status, record.error = scores.evaluation, "complete", None
        else:
            record.update(job.describe(recipe, prepared))
            record.notes = notes
            record.status = "evaluated"
            # A recipe's untrained model is a baseline; a finished run's model is a final result.
            setattr(record, "final" if is_run else "baseline", scores.evaluation)
            record.peak_memory_mb = runs.peak_memory_mb()
            runs.write_json(out_dir / runs.ENV, environment)
        out_dir = session.finish(out_dir, record)  # a staged (--overwrite) run now complete replaces the old one
        console.print(results_table(record.baseline if not is_run else None, record.final,
                                    title=f"{target}: {recipe.eval.split}"))
        console.print(f"Scores written to: {out_dir}")
    return out_dir, record


def scoring_left(run_dir: Path) -> bool:
    """Did training finish in `run_dir` (its weights are saved) but not the final scoring? Then
    `hfkit train --resume` scores it, as `hfkit eval RUN` does, instead of training again."""
    if not (runs.is_run_dir(run_dir) and has_record(run_dir) and read_record(run_dir).awaits_scoring):
        return False
    try:
        session.run_weights(run_dir, load_recipe(run_dir / runs.RECIPE))
    except HfkitError:
        return False
    return True
