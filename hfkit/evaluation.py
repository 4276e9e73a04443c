"""Scoring a model: loss/perplexity through `Trainer.evaluate`, then batched generation and metrics.

Trainer does not generate for decoder-only models at eval time and hands `compute_metrics` logits,
so hfkit generates itself and scores text.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit import metrics
from hfkit.generation import generate
from hfkit.tasks import GenerationInputs


@dataclass
class Scores:
    """What one evaluation produced: headline metrics, metric details, one row per eval example."""

    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    predictions: list[dict] = field(default_factory=list)


def score(trainer, tokenizer, recipe, metric_names: list[str], inputs: GenerationInputs | None,
          tokenized_eval, stream_to: Path | None = None) -> Scores:
    """Score the model in `trainer`: loss and perplexity, then generation and the metrics.

    With `stream_to`, prediction rows are appended there batch by batch (with their index), so a
    long evaluation that dies keeps what it generated; the caller writes the ordered file.
    """
    result = Scores()
    if tokenized_eval is not None and len(tokenized_eval):
        loss = trainer.evaluate(eval_dataset=tokenized_eval)["eval_loss"]
        result.metrics["eval_loss"] = loss
        result.metrics["perplexity"] = math.exp(min(loss, 50.0))  # capped: an untrained model can overflow
    if inputs is None:
        return result
    batch_size = trainer.args.per_device_eval_batch_size
    with _stream(stream_to) as sink:
        def on_batch(indices: list[int], answers: list[str]) -> None:
            for i, answer in zip(indices, answers):
                sink({"index": i, **_row(inputs, i, answer)})

        predictions = generate(trainer.model, tokenizer, inputs.prompts, recipe.generation, batch_size,
                               trainer.args.seed, on_batch=on_batch)
    if metric_names:
        scores, result.details = metrics.compute(metric_names, predictions, inputs.references, recipe.eval.metric_args)
        result.metrics.update(scores)
    result.predictions = [_row(inputs, i, answer) for i, answer in enumerate(predictions)]
    return result


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
    """A rich table: metric, baseline, final and the change; metric signatures as a caption."""
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
    if signatures:
        table.caption = "\n".join(signatures)
    return table


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if _is_number(value) else str(value)
