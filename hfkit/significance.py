"""Paired significance for `hfkit compare`: which prediction files share an eval set, whether one
system's scores really differ from another's on those examples, and where they differ most.

Two prediction files are paired only when they hold the same example ids with the same references
(one eval set). The metric's inputs are rebuilt from the rows (`metric_inputs`) and go through
`hfkit.metrics.bootstrap.paired_bootstrap`, the function the metrics tests check against
sacrebleu's `paired_bs`: the same resamples for both systems, a delta interval and a p-value.
A difference with p >= ALPHA is not significant.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hfkit.errors import HfkitError
from hfkit.metrics import lower_is_better
from hfkit.metrics.bootstrap import DEFAULT_SEED, paired_bootstrap
from hfkit.metrics.per_example import SUPPORTED

ALPHA = 0.05
RESAMPLES = 1000
# Per-example keys the qualitative section ranks by, most informative first (graded before 0/1).
EXAMPLE_KEYS = ("f1", "chrf", "sacrebleu", "rougeL", "rouge1", "rougeLsum", "rouge2", "ter", "exact_match", "exact")


class NotPaired(Exception):
    """Two prediction files that cannot be paired; the message says why (shown in the report)."""


@dataclass
class Predictions:
    """One predictions*.jsonl file: one row per eval example (id, input, reference, prediction, scores)."""

    path: Path
    rows: list[dict]

    @cached_property
    def eval_set(self) -> str:
        """A short hash of the (id, reference) pairs: equal for files scored on the same examples."""
        digest = hashlib.sha1()
        for row in sorted(self.rows, key=lambda r: str(r.get("id"))):
            digest.update(json.dumps([row.get("id"), row.get("reference")], sort_keys=True, ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()[:12]

    @cached_property
    def by_id(self) -> dict[str, dict]:
        return {str(row.get("id")): row for row in self.rows}


def read_predictions(path: Path) -> Predictions | None:
    """The file's rows, or None when it is missing or unreadable (an old or interrupted run)."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return None
    if not rows or not all(isinstance(row, dict) and "id" in row and "reference" in row for row in rows):
        return None  # written before hfkit gave every example an id: nothing to join on
    return Predictions(path, rows)


def metric_inputs(rows: list[dict]) -> tuple[list, list]:
    """(predictions, references) in the metric's shapes. A SQuAD row stores the metric's own
    prediction ({id, prediction_text[, no_answer_probability]}) as `metric_prediction`; older rows
    get {id, prediction_text} rebuilt from the answer."""
    predictions, references = [], []
    for row in rows:
        reference, prediction = row["reference"], row.get("metric_prediction")
        if prediction is None:
            prediction = ({"id": reference["id"], "prediction_text": row["prediction"]} if isinstance(reference, dict)
                          else row["prediction"])
        predictions.append(prediction)
        references.append(reference)
    return predictions, references


def paired_test(a: Predictions, b: Predictions, metric_names: list[str], metric_args: dict | None,
                resamples: int = RESAMPLES, seed: int | None = DEFAULT_SEED) -> dict[str, dict[str, Any]]:
    """{metric key: {a, b, delta, low, high, p_value, significant}} of system b against system a."""
    if a.eval_set != b.eval_set:
        raise NotPaired("different eval sets (example ids or references differ)")
    ordered = [b.by_id[str(row["id"])] for row in a.rows]  # b's rows in a's order
    predictions_a, references = metric_inputs(a.rows)
    predictions_b, _ = metric_inputs(ordered)
    results: dict[str, dict[str, Any]] = {}
    for name in metric_names:
        if name not in SUPPORTED:
            continue  # a Hub metric: no per-example scores to resample
        try:
            tested = paired_bootstrap(name, predictions_a, predictions_b, references, (metric_args or {}).get(name),
                                      n=resamples, seed=seed)
        except (KeyError, TypeError, ValueError, HfkitError) as err:
            raise NotPaired(f"{name}: the predictions cannot be rescored ({type(err).__name__}: {err}); "
                            "they were written by an older hfkit") from None
        results.update(tested)
    if not results:
        raise NotPaired("no metric with per-example scores (" + ", ".join(metric_names or ["none"]) + ")")
    for result in results.values():
        result["significant"] = bool(result["p_value"] < ALPHA)
    return results


def verdict(key: str, result: dict | None) -> str:
    """'better', 'worse' (significant, in the metric's own direction) or 'n.s.'; '' without a test."""
    if not result:
        return ""
    if not result.get("significant"):
        return "n.s."
    improved = result["delta"] < 0 if lower_is_better(key) else result["delta"] > 0
    return "better" if improved else "worse"


def mark(result: dict | None) -> str:
    """The mark after a difference: '*' significant (p < 0.05), 'ns' not; '' when untested."""
    if not result:
        return ""
    return "*" if result.get("significant") else "ns"


def example_key(a: Predictions, b: Predictions) -> str | None:
    """The per-example score both files carry that tells examples apart best (EXAMPLE_KEYS order)."""
    keys_a = set(a.rows[0].get("scores") or {})
    keys_b = set(b.rows[0].get("scores") or {})
    common = keys_a & keys_b
    return next((key for key in EXAMPLE_KEYS if key in common), next(iter(sorted(common)), None))


def biggest_differences(baseline: Predictions, final: Predictions, count: int = 3) -> tuple[str | None, list, list]:
    """(score key, gains, losses): the `count` examples whose per-example score rose most from the
    baseline to the final model, and the `count` where it fell most, joined by id. For a
    lower-is-better score (TER) a fall is a gain."""
    key = example_key(baseline, final)
    if key is None or baseline.eval_set != final.eval_set:
        return key, [], []
    sign = -1.0 if lower_is_better(key) else 1.0
    changes = []
    for row in final.rows:
        before = baseline.by_id[str(row["id"])]
        score_before, score_after = (before.get("scores") or {}).get(key), (row.get("scores") or {}).get(key)
        if score_before is None or score_after is None or score_before == score_after:
            continue
        changes.append({"id": row["id"], "input": row.get("input"), "reference": row.get("reference"),
                        "baseline": before.get("prediction"), "final": row.get("prediction"),
                        "score_baseline": score_before, "score_final": score_after,
                        "gain": sign * (score_after - score_before)})
    changes.sort(key=lambda change: -change["gain"])
    gains = [c for c in changes if c["gain"] > 0][:count]
    losses = [c for c in reversed(changes) if c["gain"] < 0][:count]
    return key, gains, losses
