"""Scoring a model: loss/perplexity through `Trainer.evaluate`, then batched generation and metrics.

Trainer does not generate for decoder-only models at eval time and hands `compute_metrics` logits,
so hfkit generates itself and scores text.
"""

from __future__ import annotations

import math
from typing import Any

from hfkit import metrics
from hfkit.generation import generate
from hfkit.tasks import GenerationInputs


def score(trainer, tokenizer, recipe, metric_names: list[str], inputs: GenerationInputs | None,
          tokenized_eval) -> tuple[dict[str, Any], list[dict]]:
    """Metrics for the model in `trainer`, and one prediction row per eval example."""
    results: dict[str, Any] = {}
    if tokenized_eval is not None and len(tokenized_eval):
        loss = trainer.evaluate(eval_dataset=tokenized_eval)["eval_loss"]
        results["eval_loss"] = loss
        results["perplexity"] = math.exp(min(loss, 50.0))  # capped: an untrained model can overflow
    if inputs is None:
        return results, []
    batch_size = trainer.args.per_device_eval_batch_size
    predictions = generate(trainer.model, tokenizer, inputs.prompts, recipe.generation, batch_size, trainer.args.seed)
    if metric_names:
        results.update(metrics.compute(metric_names, predictions, inputs.references))
    rows = [{"input": s, "reference": r, "prediction": p}
            for s, r, p in zip(inputs.sources, inputs.references, predictions)]
    return results, rows


def results_table(baseline: dict | None, final: dict | None, title: str):
    """A rich table: metric, baseline, final and the change."""
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "baseline", "final", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    baseline, final = baseline or {}, final or {}
    for key in dict.fromkeys([*baseline, *final]):
        before, after = baseline.get(key), final.get(key)
        change = f"{after - before:+.4f}" if _is_number(before) and _is_number(after) else ""
        table.add_row(key, _fmt(before), _fmt(after), change)
    return table


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if _is_number(value) else str(value)
