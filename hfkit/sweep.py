"""Decoding sweeps: `hfkit eval RUN_OR_RECIPE --decode greedy --decode beam=4 --decode top_k=50`
(or `generation.sweep` in the recipe) scores each decoding strategy on the same eval examples with
the same weights, and writes one folder:

  RUN/sweep-<UTC time>/ (a run), or runs/<name>-sweep-<UTC time>/ with its recipe.yaml (a recipe)
    sweep.json                     per strategy: the effective decoding settings, scores with their
                                   bootstrap intervals, generation speed; the eval loss (computed once:
                                   decoding does not change it); status and error
    sweep.md                       the same as a table, metric x strategy
    predictions-<strategy>.jsonl   one row per example, as predictions.jsonl
    env.json                       versions, seed, hardware, command line

Sampling strategies draw from a generator seeded with training.seed before each strategy, so a
rerun gives the same samples. `hfkit compare` reads these folders (hfkit.sweep_table, which loads
no model) and pairs every strategy with the first one given (the same examples, so the paired test
applies).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from hfkit import runs
from hfkit.errors import HfkitError, first_line, stop_signal
from hfkit.formats import SweepRecord
from hfkit.schema import GenerationSection, decoding_strategy
from hfkit.sweep_table import markdown, rich_table

SHOWN_SETTINGS = ("num_beams", "do_sample", "top_k", "top_p", "temperature", "repetition_penalty", "max_new_tokens")


def strategies(specs: list[str], base: GenerationSection) -> list[tuple[str, GenerationSection]]:
    """(name, settings) of each --decode spec, in the order given; a bad or repeated spec is an error."""
    chosen: dict[str, GenerationSection] = {}
    for spec in specs:
        name = ",".join(part.strip() for part in str(spec).split(",") if part.strip())
        if name in chosen:
            raise HfkitError(f"--decode {spec}: this strategy is given twice")
        try:
            chosen[name] = decoding_strategy(base, spec)
        except ValueError as err:
            raise HfkitError(f"--decode: {err}") from None
    return list(chosen.items())


def sweep_specs(target: str, overrides: list[str], decode: list[str] | None) -> list[str]:
    """The strategies to sweep: --decode's, else the recipe's generation.sweep (none: a plain eval)."""
    if decode:
        return decode
    from hfkit.recipe import load_recipe

    path = Path(target)
    recipe = load_recipe(path / runs.RECIPE if runs.is_run_dir(path) else path, overrides)
    return list(recipe.generation.sweep or [])


def slug(name: str) -> str:
    """A file-name-safe form of a strategy: 'top_k=50,temperature=0.7' -> 'top_k50_temperature0.7'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("=", "")).strip("_") or "strategy"


@runs.releasing_locks
def run_sweep(target: str, specs: list[str], overrides: list[str], overwrite: bool = False,
              command: list[str] | None = None) -> tuple[Path, dict]:
    """Score every strategy; returns the folder written and what sweep.json holds."""
    from hfkit import distributed, job, session
    from hfkit.scoring import EvalData

    opened = session.open_target(target, overrides)
    is_run, recipe, task, weights = opened.is_run, opened.recipe, opened.task, opened.weights
    chosen = strategies(specs, recipe.generation)
    if not task.generates:
        raise HfkitError(f"--decode: this {recipe.task} recipe picks answer spans and does not generate; "
                         "there is no decoding to sweep")
    job.check_hub_needs(recipe, task, training=False)
    job.check_model(recipe, task, [(f"--decode {name}", settings) for name, settings in chosen])
    out_dir = session.output_folder(opened, "sweep", overwrite)
    args = job.training_arguments(recipe, task, out_dir)
    base_path = job.materialize(recipe)
    is_main = distributed.is_main()
    data: dict[str, Any] = {"kind": "sweep", "status": "running", "error": None, "target": str(target),
                            "method": recipe.peft.method if is_run else "zero-shot",
                            "seed": args.seed, "metric_args": recipe.eval.metric_args, "loss": {}, "strategies": []}
    session.start_output(out_dir, opened)
    try:
        prepared = job.prepare(recipe, task, str(weights) if weights else base_path, with_train=False)
        described = job.describe(recipe, prepared)
        data.update({key: described[key] for key in ("task", "model", "dataset", "eval_split", "eval_examples",
                                                     "metric_names")})
        model = job.load_model(recipe, task, prepared.tokenizer, weights, train=False)
        trainer = job.make_trainer(args, prepared, model)
        evaluation = prepared.eval
        if evaluation.tokenized is not None:  # the loss once: it does not depend on decoding
            loss_only = EvalData(evaluation.rows, evaluation.tokenized, None, evaluation.counts)
            scored = job.make_scorer(recipe, prepared, trainer, loss_only).score(trainer.model).evaluation
            data["loss"] = {**scored.metrics, "loss_tokens": scored.loss_tokens, "loss_examples": scored.loss_examples}
        texts_only = EvalData(evaluation.rows, None, evaluation.examples, evaluation.counts)
        _warm_up(trainer, prepared, recipe, chosen[0][1])
        for name, settings in chosen:
            task.recipe = recipe.model_copy(update={"generation": settings})
            data["strategies"].append(_score_strategy(job, task, prepared, trainer, texts_only, name, settings,
                                                      out_dir if is_main else None))
            if is_main:
                _write(out_dir, data)  # a sweep that fails later keeps what it scored
        data["status"] = "complete"
    except BaseException as err:
        data["status"], data["error"] = (("interrupted", f"stopped by {stop_signal(err)[0]}") if isinstance(
            err, KeyboardInterrupt) else ("failed", f"{type(err).__name__}: {first_line(err)}"))
        if is_main:
            _write(out_dir, data)
        raise
    finally:
        task.recipe = recipe
    environment = runs.env_info(args.seed, distributed.describe(trainer), command or sys.argv)
    if is_main:
        _write(out_dir, data)
        runs.write_json(out_dir / runs.ENV, environment)
        runs.write_text(out_dir / "sweep.md", markdown(data))
        out_dir = out_dir if is_run else runs.promote(out_dir)
        from hfkit.console import console

        console.print(rich_table(data))
        console.print(f"Sweep written to: {out_dir}")
    return out_dir, data


def _write(out_dir: Path, data: dict) -> None:
    """sweep.json through its schema (hfkit.formats.SweepRecord), secrets redacted."""
    SweepRecord.model_validate(data).write(out_dir)


def _warm_up(trainer, prepared, recipe, settings: GenerationSection) -> None:
    """One untimed short generation: the first strategy would otherwise pay for generate's first call
    (measured on a tiny model: greedy at 4 examples/s before, beside sampling at 7)."""
    from hfkit import distributed
    from hfkit.generation import generate
    from hfkit.scoring import computing_in

    prompts = prepared.eval.examples.prompts[:1] if prepared.eval.examples else []
    if not prompts or distributed.world_size() > 1:  # sharded weights generate in step: not worth it
        return
    with computing_in(trainer.model, None if recipe.eval.dtype == "auto" else "float32"):
        generate(trainer.model, prepared.tokenizer, prompts, settings.model_copy(update={"max_new_tokens": 2}), 1,
                 trainer.args.seed, token_ids=prepared.task.generation_settings(prepared.tokenizer))


def _score_strategy(job, task, prepared, trainer, eval_data, name: str, settings: GenerationSection,
                    out_dir: Path | None) -> dict[str, Any]:
    from hfkit.console import say
    from hfkit.generation import generation_config

    say(f"Decoding strategy: {name}")
    scorer = job.make_scorer(task.recipe, prepared, trainer, eval_data)
    file = f"predictions-{slug(name)}.jsonl"
    try:
        scores = scorer.score(trainer.model, stream_to=out_dir / runs.PARTIAL_PREDICTIONS if out_dir else None)
    except HfkitError:
        raise
    except Exception as err:  # a metric that cannot score these predictions
        raise HfkitError(f"--decode {name}: scoring failed ({type(err).__name__}: {first_line(err)}); check "
                         "eval.metrics and eval.metric_args against the task and its data") from err
    if out_dir is not None:
        scores.keep(out_dir, file)
    config = generation_config(trainer.model, prepared.tokenizer, settings, task.generation_settings(prepared.tokenizer))
    effective = {key: getattr(config, key, None) for key in SHOWN_SETTINGS}
    if not settings.do_sample:  # GenerationConfig keeps sampling defaults that greedy and beam search ignore
        effective = {key: value for key, value in effective.items() if key not in ("top_k", "top_p", "temperature")}
    seconds = getattr(scorer, "generation_seconds", None)
    evaluation, examples = scores.evaluation, len(scores.predictions)
    return {"name": name, "settings": effective, "sampled": settings.do_sample,
            "seed": trainer.args.seed if settings.do_sample else None,
            "metrics": evaluation.metrics, "intervals": evaluation.intervals, "details": evaluation.details,
            "examples": examples, "generation_s": round(seconds, 3) if seconds else None,
            "examples_per_s": round(examples / seconds, 2) if seconds else None, "predictions": file,
            "predictions_version": scores.evaluation.predictions_version}
