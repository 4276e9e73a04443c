"""The results table: a run's scores, baseline -> final, one row per score key.

One model, rendered three ways: the terminal at the end of `hfkit train`/`hfkit eval`
(hfkit.console), the model card (hfkit.cards) and `hfkit compare`'s tables and report.html, where a
row also carries the paired test of the final model against its baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hfkit.metrics import lower_is_better
from hfkit.record import Evaluation


@dataclass
class ResultRow:
    key: str  # a score key: sacrebleu, rougeL, eval_loss, ...
    baseline: Any = None  # a number, or a bound such as perplexity's ">5.18e+21"
    final: Any = None
    baseline_interval: list[float] | None = None  # 95% bootstrap interval
    final_interval: list[float] | None = None
    lower_is_better: bool = False
    test: dict[str, Any] | None = None  # the paired test of final against baseline, when one was run

    @property
    def label(self) -> str:
        return f"{self.key} (lower is better)" if self.lower_is_better else self.key

    @property
    def change(self) -> float | None:
        """final - baseline; None without both numbers."""
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (self.baseline, self.final))
        return self.final - self.baseline if numbers else None


def result_rows(baseline: Evaluation | None, final: Evaluation | None, metric_names=()) -> list[ResultRow]:
    """Every score of the two evaluations, in the order they report them (baseline's first)."""
    before, after = (baseline or Evaluation()), (final or Evaluation())
    return [ResultRow(key, before.metrics.get(key), after.metrics.get(key), before.intervals.get(key),
                      after.intervals.get(key), lower_is_better(key, metric_names))
            for key in dict.fromkeys([*before.metrics, *after.metrics])]
