"""Paired significance for `hfkit compare`: which prediction files share an eval set, whether one
system's scores really differ from another's on those examples, and where they differ most.

Two prediction files are paired only when they hold the same example ids with the same references
(one eval set). The metric's inputs are rebuilt from the rows (`metric_inputs`) and go through
`hfkit.metrics.bootstrap.paired_bootstrap`, the function the metrics tests check against
sacrebleu's `paired_bs`: the same resamples for both systems, a delta interval and a p-value.
Scores of 0 or 1 per example (exact match) are tested with the exact McNemar test instead (a
two-sided sign test on the examples one system gets right and the other wrong): the bootstrap was
anti-conservative there (p = 0.047 on 6 discordant pairs where McNemar gives 0.22); both p-values
are kept and `test` says which decides.

A difference is significant when (1) at least MIN_DISCORDANT examples score differently: with
fewer, even all of them one way, no two-sided test reaches p < 0.05 (5 pairs: 2 x 0.5^5 = 0.0625),
so a change of one or two examples is never marked; and (2) its p-value, Holm-corrected over all
the metric keys of one comparison (squad_v2 tests six at once), is below ALPHA.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hfkit import metrics
from hfkit.errors import HfkitError, first_line
from hfkit.formats import PredictionRow, read_prediction_lines
from hfkit.metrics.bootstrap import DEFAULT_SEED, paired

ALPHA = 0.05
RESAMPLES = 1000
MIN_DISCORDANT = 6  # the fewest differing examples with which a two-sided test can reach p < ALPHA


class NotPaired(Exception):
    """Two prediction files that cannot be paired; the message says why (shown in the report)."""


@dataclass
class Predictions:
    """One predictions*.jsonl file: one row per eval example (hfkit.formats.PredictionRow)."""

    path: Path | None
    rows: list[PredictionRow]

    def __post_init__(self):
        self.rows = [row if isinstance(row, PredictionRow) else PredictionRow.model_validate(row) for row in self.rows]

    @cached_property
    def eval_set(self) -> str:
        """A short hash of the (id, reference) pairs: equal for files scored on the same examples."""
        digest = hashlib.sha1()
        for row in sorted(self.rows, key=lambda r: str(r.id)):
            digest.update(json.dumps([row.id, row.reference], sort_keys=True, ensure_ascii=False).encode())
            digest.update(b"\n")
        return digest.hexdigest()[:12]

    @cached_property
    def by_id(self) -> dict[str, PredictionRow]:
        return {str(row.id): row for row in self.rows}


def read_predictions(path: Path) -> Predictions | None:
    """The file's rows, or None when there is no such file (an interrupted run). A file that is there
    but cannot be paired raises NotPaired saying why: a broken line, no rows, rows without ids."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise NotPaired(f"{path.name} cannot be read ({getattr(err, 'strerror', None) or err})") from None
    try:
        rows = read_prediction_lines(text)
    except ValueError as err:  # a broken line, or a row that is not a prediction
        raise NotPaired(f"{path.name}: {first_line(err)}; score the run again with hfkit eval RUN") from None
    if not rows:
        raise NotPaired(f"{path.name} holds no predictions")
    if not all(row.id is not None and row.reference is not None for row in rows):
        raise NotPaired(f"{path.name}: its rows have no example ids (written by an hfkit before 0.2), so nothing "
                        "joins them to another run's; score the run again with hfkit eval RUN")
    return Predictions(path, rows)


def metric_inputs(rows: list[PredictionRow | dict]) -> tuple[list, list]:
    """(predictions, references) in the metric's shapes. A SQuAD row stores the metric's own
    prediction ({id, prediction_text[, no_answer_probability]}) as `metric_prediction`; older rows
    get {id, prediction_text} rebuilt from the answer."""
    predictions, references = [], []
    for row in Predictions(None, rows).rows:
        prediction = row.metric_prediction
        if prediction is None:
            prediction = ({"id": row.reference["id"], "prediction_text": row.prediction}
                          if isinstance(row.reference, dict) else row.prediction)
        predictions.append(prediction)
        references.append(row.reference)
    return predictions, references


def paired_test(a: Predictions, b: Predictions, metric_names: list[str], metric_args: dict | None,
                resamples: int = RESAMPLES, seed: int | None = DEFAULT_SEED) -> dict[str, dict[str, Any]]:
    """{metric key: {a, b, delta, low, high, p_value, significant}} of system b against system a."""
    if a.eval_set != b.eval_set:
        raise NotPaired("different eval sets (example ids or references differ)")
    ordered = [b.by_id[str(row.id)] for row in a.rows]  # b's rows in a's order
    predictions_a, references = metric_inputs(a.rows)
    predictions_b, _ = metric_inputs(ordered)
    results: dict[str, dict[str, Any]] = {}
    for name in metric_names:
        if metrics.is_hub(name):
            continue  # a Hub metric: no per-example scores to resample
        try:
            spec = metrics.get(name)
        except HfkitError as err:  # a plug-in that does not import here
            raise NotPaired(str(err)) from None
        args = (metric_args or {}).get(name)
        try:  # one run of the metric per system: its scores, per-example scores and resampled parts
            scored_a, scored_b = spec.score(predictions_a, references, args), spec.score(predictions_b, references, args)
        except (KeyError, TypeError, ValueError, HfkitError) as err:
            raise NotPaired(f"{name}: the predictions cannot be rescored ({type(err).__name__}: {err}); "
                            "they were written by an older hfkit") from None
        tested = paired(scored_a, scored_b, n=resamples, seed=seed)
        for key, result in tested.items():
            result.update(_discordance(key, scored_a.examples.get(key, []), scored_b.examples.get(key, [])))
            result["p_bootstrap"] = result["p_value"]
            if key in spec.binary:
                result["p_value"] = mcnemar_exact(result["b_better"], result["a_better"])
            result["test"] = "exact McNemar" if key in spec.binary else "paired bootstrap"
        results.update(tested)
    if not results:
        raise NotPaired("no metric with per-example scores (" + ", ".join(metric_names or ["none"]) + ")")
    keys = list(results)
    for key, adjusted in zip(keys, holm([results[key]["p_value"] for key in keys])):
        result = results[key]
        result["p_holm"] = adjusted
        result["significant"] = bool(adjusted < ALPHA and result["discordant"] >= MIN_DISCORDANT)
    return results


def _discordance(key: str, a: list[float], b: list[float]) -> dict[str, int]:
    """How many examples the two systems score differently on `key` (NaN: not in that subset), and
    on how many each scores higher."""
    pairs = [(x, y) for x, y in zip(a, b) if x == x and y == y]
    return {"discordant": sum(x != y for x, y in pairs), "a_better": sum(x > y for x, y in pairs),
            "b_better": sum(y > x for x, y in pairs)}


def mcnemar_exact(b_better: int, a_better: int) -> float:
    """The exact McNemar test: a two-sided binomial (sign) test of the discordant pairs against 1/2."""
    from scipy.stats import binomtest

    total = a_better + b_better
    return 1.0 if total == 0 else float(binomtest(b_better, total, 0.5).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (as R's p.adjust(p, "holm")): the k-th smallest of m is
    multiplied by m - k + 1, kept non-decreasing and capped at 1. NaN stays NaN and is not counted."""
    valid = [i for i, p in enumerate(p_values) if p == p]
    adjusted = list(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(valid, key=lambda i: p_values[i])):
        running = max(running, min(1.0, (len(valid) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def verdict(key: str, result: dict | None, metric_names=()) -> str:
    """'better', 'worse' (significant, in the metric's own direction) or 'n.s.'; '' without a test."""
    if not result:
        return ""
    if not result.get("significant"):
        return "n.s."
    improved = result["delta"] < 0 if metrics.lower_is_better(key, metric_names) else result["delta"] > 0
    return "better" if improved else "worse"


def mark(result: dict | None) -> str:
    """The mark after a difference: '*' significant (see the module docstring), 'ns' not; '' when untested."""
    if not result:
        return ""
    return "*" if result.get("significant") else "ns"


def example_key(a: Predictions, b: Predictions, metric_names=()) -> str | None:
    """The per-example score both files carry that tells their examples apart best: of the keys
    that stand for the run's metrics (`overview`: BLEU, chrF, ROUGE-L, SQuAD EM and F1, ...), the
    one on which most examples changed; graded scores before right/wrong ones on a tie."""
    common = set(a.rows[0].scores) & set(b.rows[0].scores)
    specs = [spec for spec in map(metrics.find, metric_names) if spec is not None]
    candidates = [key for spec in specs for key in spec.overview if key in common] or sorted(common)
    if not candidates:
        return None
    binary = {key for spec in specs for key in spec.binary}
    changed = {key: sum(row.scores.get(key) != _score(b.by_id.get(str(row.id)), key) for row in a.rows)
               for key in candidates}
    return max(candidates, key=lambda key: (changed[key], key not in binary, -candidates.index(key)))


def _score(row: PredictionRow | None, key: str):
    return row.scores.get(key) if row is not None else None


def biggest_differences(baseline: Predictions, final: Predictions, count: int = 3,
                        metric_names=()) -> tuple[str | None, list, list]:
    """(score key, gains, losses): the `count` examples whose per-example score rose most from the
    baseline to the final model, and the `count` where it fell most, joined by id. For a
    lower-is-better score (TER) a fall is a gain."""
    key = example_key(baseline, final, metric_names)
    if key is None or baseline.eval_set != final.eval_set:
        return key, [], []
    sign = -1.0 if metrics.lower_is_better(key, metric_names) else 1.0
    changes = []
    for row in final.rows:
        before = baseline.by_id[str(row.id)]
        score_before, score_after = before.scores.get(key), row.scores.get(key)
        if score_before is None or score_after is None or score_before == score_after:
            continue
        changes.append({"id": row.id, "input": row.input, "reference": row.reference,
                        "baseline": before.prediction, "final": row.prediction,
                        "score_baseline": score_before, "score_final": score_after,
                        "gain": sign * (score_after - score_before)})
    changes.sort(key=lambda change: -change["gain"])
    gains = [c for c in changes if c["gain"] > 0][:count]
    losses = [c for c in reversed(changes) if c["gain"] < 0][:count]
    return key, gains, losses
