"""Scoring a model: loss/perplexity through `Trainer.evaluate`, then batched generation and metrics.

Trainer does not generate for decoder-only models at eval time and hands `compute_metrics` logits,
so hfkit generates itself and scores text. Extractive QA picks spans instead (its task's `predict`).
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit import distributed, metrics
from hfkit.generation import generate
from hfkit.tasks import GenerationInputs


@dataclass
class Scores:
    """What one evaluation produced: headline metrics, metric details, one row per eval example."""

    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)


def score(trainer, prepared, recipe, stream_to: Path | None = None) -> Scores:
    """Score the model in `trainer` on the prepared eval split.

    Generative tasks: loss and perplexity through `Trainer.evaluate`, then batched generation.
    Tasks with their own `predict` (extractive QA) produce answers and loss in one pass. Then the
    metrics. With `stream_to`, generated rows are appended there batch by batch (with their
    index), so a long evaluation that dies keeps what it generated; the caller writes the ordered file.
    """
    task, inputs = prepared.task, prepared.eval_inputs
    result = Scores()
    if task.predict is not None:
        answers, loss = task.predict(trainer, prepared, recipe)
        if loss is not None:
            result.metrics["eval_loss"] = loss
    else:
        if prepared.eval_dataset is not None and len(prepared.eval_dataset):
            loss = trainer.evaluate(eval_dataset=prepared.eval_dataset)["eval_loss"]
            result.metrics["eval_loss"] = loss
            result.metrics["perplexity"] = math.exp(min(loss, 50.0))  # capped: an untrained model can overflow
        if inputs is None:
            return result
        answers = _generate(trainer, prepared.tokenizer, inputs, recipe, stream_to)
    if prepared.metric_names and distributed.is_main():  # every process holds all answers; one scores them
        predictions, references = (task.metric_inputs(answers, inputs, recipe) if task.metric_inputs
                                   else (answers, inputs.references))
        scores, result.details = metrics.compute(prepared.metric_names, predictions, references, recipe.eval.metric_args)
        result.metrics.update(scores)
    result.predictions = [_row(inputs, i, answer) for i, answer in enumerate(answers)]
    return result


def _generate(trainer, tokenizer, inputs: GenerationInputs, recipe, stream_to: Path | None) -> list[str]:
    """Each process generates every n-th prompt; the answers are gathered back into input order."""
    mine = distributed.shard(inputs.prompts)
    with _stream(stream_to) as sink:
        def on_batch(local: list[int], answers: list[str]) -> None:
            for i, answer in zip(local, answers):
                sink({"index": mine[i], **_row(inputs, mine[i], answer)})

        answers = generate(trainer.model, tokenizer, [inputs.prompts[i] for i in mine], recipe.generation,
                           trainer.args.per_device_eval_batch_size, trainer.args.seed, on_batch=on_batch,
                           synced=distributed.shards_parameters(trainer))
    ordered: list[str] = [""] * len(inputs.prompts)
    for index, answer in distributed.gather(list(zip(mine, answers))):
        ordered[index] = answer  # each index comes from exactly one process
    return ordered


def _row(inputs: GenerationInputs, i: int, prediction: str) -> dict:
    return {"input": inputs.sources[i], "reference": inputs.references[i], "prediction": prediction}


@contextmanager
def _stream(path: Path | None):
    """Yield a function that appends a JSON line to `path` (or does nothing without one)."""
    if path is None:
        yield lambda row: None
        return
    with path.open("w", encoding="utf-8") as f:
        def write(row: dict) -> None:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()

        yield write


def results_table(baseline: Scores | None, final: Scores | None, title: str):
    """A rich table (metric, baseline, final, change), followed by the metrics' signatures."""
    from rich.console import Group
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "baseline", "final", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    before_all = baseline.metrics if baseline else {}
    after_all = final.metrics if final else {}
    for key in dict.fromkeys([*before_all, *after_all]):
        before, after = before_all.get(key), after_all.get(key)
        change = f"{after - before:+.4f}" if _is_number(before) and _is_number(after) else ""
        table.add_row(key, _fmt(before), _fmt(after), change)
    details = (final or baseline).details if (final or baseline) else {}
    signatures = [f"{key}: {value}" for key, value in details.items() if key.endswith("signature")]
    return Group(table, *signatures)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if _is_number(value) else str(value)
