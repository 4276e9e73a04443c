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
rerun gives the same samples. `hfkit compare` reads these folders and pairs every strategy with
the first one given (the same examples, so the paired test applies).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hfkit import runs, significance
from hfkit.console import interval, number
from hfkit.errors import HfkitError, first_line
from hfkit.metrics import lower_is_better
from hfkit.schema import GenerationSection, decoding_strategy

SWEEP = "sweep.json"
SHOWN_SETTINGS = ("num_beams", "do_sample", "top_k", "top_p", "temperature", "repetition_penalty", "max_new_tokens")


def is_sweep_dir(path: Path) -> bool:
    return path.is_dir() and (path / SWEEP).is_file()


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


def run_sweep(target: str, specs: list[str], overrides: list[str], overwrite: bool = False,
              command: list[str] | None = None) -> tuple[Path, dict]:
    """Score every strategy; returns the folder written and what sweep.json holds."""
    from hfkit import distributed, job
    from hfkit.evaluation import run_weights
    from hfkit.recipe import load_recipe
    from hfkit.record import has_record, read_record
    from hfkit.redaction import redacted_yaml
    from hfkit.scoring import EvalData
    from hfkit.training import create_run_dir

    target_path = Path(target)
    is_run = runs.is_run_dir(target_path)
    recipe = load_recipe(target_path / runs.RECIPE if is_run else target_path, overrides)
    chosen = strategies(specs, recipe.generation)
    previous = read_record(target_path) if is_run and has_record(target_path) else None
    task = job.bind(recipe, previous.is_encoder_decoder if previous else None)
    if not task.generates:
        raise HfkitError(f"--decode: this {recipe.task} recipe picks answer spans and does not generate; "
                         "there is no decoding to sweep")
    weights = run_weights(target_path, recipe) if is_run else None
    if is_run:
        out_dir = Path(distributed.broadcast(str(runs.fresh_path(target_path / f"sweep-{runs.utc_stamp()}"))))
    else:
        named = recipe.model_copy(update={"output": recipe.output.model_copy(update={"name": f"{recipe.run_name}-sweep"})})
        out_dir = create_run_dir(named, overwrite)
    args = job.training_arguments(recipe, task, out_dir)
    base_path = job.materialize(recipe)
    is_main = distributed.is_main()
    data: dict[str, Any] = {"kind": "sweep", "status": "running", "error": None, "target": str(target),
                            "method": recipe.peft.method if is_run else "zero-shot",
                            "seed": args.seed, "metric_args": recipe.eval.metric_args, "loss": {}, "strategies": []}
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not is_run:
            runs.write_text(out_dir / runs.RECIPE, redacted_yaml(recipe))
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
            data["loss"] = {**scored.metrics, "loss_tokens": scored.loss_tokens}
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
        data["status"], data["error"] = "failed", f"{type(err).__name__}: {first_line(err)}"
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
    """sweep.json, secrets redacted (an error message may quote a token or a credentialed URL)."""
    from hfkit.redaction import redact_value

    runs.write_json(out_dir / SWEEP, redact_value(data))


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
    scores = scorer.score(trainer.model, stream_to=out_dir / runs.PARTIAL_PREDICTIONS if out_dir else None)
    if out_dir is not None:
        runs.write_jsonl(out_dir / file, scores.predictions)
        (out_dir / runs.PARTIAL_PREDICTIONS).unlink(missing_ok=True)
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
            "examples_per_s": round(examples / seconds, 2) if seconds else None, "predictions": file}


@dataclass
class SweepSummary:
    """A sweep folder as compare shows it; `vs_first`: each later strategy's paired test against the first."""

    path: Path
    name: str
    data: dict[str, Any]
    vs_first: dict[str, dict] = field(default_factory=dict)  # strategy -> {metric key: paired result}
    notes: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.data.get("task") or "unknown"

    @property
    def strategies(self) -> list[dict]:
        return self.data.get("strategies") or []


def summarize(path: Path) -> SweepSummary:
    name = f"{path.parent.name}/{path.name}" if runs.is_run_dir(path.parent) else path.name
    try:
        data = runs.read_json(path / SWEEP)
    except (OSError, ValueError) as err:
        data = {"status": "failed", "error": f"{SWEEP} cannot be read ({err})"}
    return SweepSummary(path, name, data if isinstance(data, dict) else {})


def pair_strategies(summary: SweepSummary, resamples: int) -> None:
    """Every strategy against the first one given: the same examples, so a paired test."""
    files = [significance.read_predictions(summary.path / s.get("predictions", "")) for s in summary.strategies]
    if not files or files[0] is None:
        return
    for strategy, rows in zip(summary.strategies[1:], files[1:]):
        if rows is None:
            continue
        try:
            summary.vs_first[strategy["name"]] = significance.paired_test(
                files[0], rows, summary.data.get("metric_names") or [], summary.data.get("metric_args"), resamples)
        except significance.NotPaired as why:
            summary.notes.append(f"{strategy['name']}: not paired: {why}")


def describe(strategy: dict) -> str:
    """'greedy', 'beam search (4 beams)' or 'sampled (seed 42): top_k 50, temperature 0.7'."""
    settings = strategy.get("settings") or {}
    if strategy.get("sampled"):
        shown = ", ".join(f"{k} {settings[k]}" for k in ("top_k", "top_p", "temperature") if settings.get(k) is not None)
        return f"sampled (seed {strategy.get('seed')}): {shown}"
    beams = settings.get("num_beams") or 1
    return f"beam search ({beams} beams)" if beams > 1 else "greedy"


def matrix(data: dict, vs_first: dict | None, cell: Callable) -> tuple[list[str], list[tuple[str, list]]]:
    """The sweep's table, metric x strategy: (header, [(row label, cells)]). `cell(key, value,
    interval, test)` renders one cell: `key` the metric (None in the other rows), `test` that
    strategy's paired test against the first (or None)."""
    listed = data.get("strategies") or []
    header = ["metric", *(s["name"] for s in listed)]
    keys = list(dict.fromkeys(key for s in listed for key in s.get("metrics", {})))
    rows: list[tuple[str, list]] = []
    for key in keys:
        label = f"{key} (lower is better)" if lower_is_better(key) else key
        rows.append((label, [cell(key, s["metrics"].get(key), (s.get("intervals") or {}).get(key),
                                  (vs_first or {}).get(s["name"], {}).get(key)) for s in listed]))
    for key, value in (data.get("loss") or {}).items():
        if key != "loss_tokens" and listed:
            label = f"{key} (lower is better, computed once)" if lower_is_better(key) else f"{key} (computed once)"
            rows.append((label, [cell(key, value, None, None)] + [cell(None, "same", None, None)] * (len(listed) - 1)))
    rows.append(("generation speed (examples/s)", [cell(None, s.get("examples_per_s"), None, None) for s in listed]))
    rows.append(("decoding", [cell(None, describe(s), None, None) for s in listed]))
    return header, rows


def plain_cell(key, value, bounds, test, separator: str = " ") -> str:
    parts = [number(value), interval(bounds)]
    if test:
        parts.append(f"({test['delta']:+.4g}{' *' if test['significant'] else ' ns'})")
    return separator.join(part for part in parts if part)


def markdown(data: dict, vs_first: dict | None = None) -> str:
    header, rows = matrix(data, vs_first, plain_cell)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in rows]
    notes = [f"{data.get('eval_examples')} eval examples, the same for every strategy; [low, high]: 95% bootstrap "
             "interval."]
    if vs_first:
        notes.append("(change vs the first strategy: * p < 0.05 in a paired bootstrap test, ns not significant)")
    if data.get("status") != "complete":
        notes.append(f"status: {data.get('status')}{': ' + data['error'] if data.get('error') else ''}")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def rich_table(data: dict, vs_first: dict | None = None, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    header, rows = matrix(data, vs_first, plain_cell)
    table = Table(title=Text(title or f"decoding sweep: {data.get('model')} on {data.get('eval_examples')} examples"),
                  caption=Text("[low, high]: 95% bootstrap interval" + ("; * p < 0.05 vs the first strategy, ns: not "
                                                                        "significant" if vs_first else "")))
    for i, name in enumerate(header):
        table.add_column(Text(name), justify="left" if i == 0 else "right", overflow="fold")
    for label, cells in rows:
        table.add_row(Text(label), *map(Text, cells))
    return table
