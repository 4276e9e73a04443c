"""Per-example scores of a metric: which examples a model gets wrong, and the raw material of paired
tests. Each metric's spec (hfkit/metrics/builtin/) says what its per-example score is: sentence
BLEU/chrF/TER as sacrebleu's `sentence_score`, each ROUGE type's F-measure, 1.0 or 0.0 for exact
match, SQuAD's EM and F1 per question (squad_v2's HasAns_/NoAns_ keys NaN for questions of the
other kind), a custom aggregate's value on the example alone (macro-F1: 1 or 0).
"""

from __future__ import annotations

from typing import Any

from hfkit.errors import HfkitError
from hfkit.metrics.registry import builtin_names, find


def example_scores(name: str, predictions: list, references: list,
                   metric_args: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """One score per example for each score key of metric `name`, in input order (`metric_args` is
    that metric's own dict, i.e. `eval.metric_args[name]`)."""
    spec = find(name)
    if spec is None:
        raise HfkitError(f"no per-example scores for metric {name!r}; hfkit has them for "
                         f"{', '.join(builtin_names())} and for any MetricSpec")
    return spec.score(predictions, references, metric_args).examples
