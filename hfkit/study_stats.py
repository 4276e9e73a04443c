"""Is a configuration really worse than the study's best? A test that covers both sources of noise.

A configuration's score moves for two reasons: the training seed (data order, LoRA's initial
weights, dropout) and the evaluation examples (a few hundred drawn from everything the model will
meet). The bootstrap intervals of one run cover only the second; a t-test across seeds covers only
the first, because every seed is scored on the same examples. The test here adds them:

  Var(delta) = s_a^2 / k_a + s_b^2 / k_b              seed noise: each side's sample variance over its k seeds
             + Var_examples(mean_b - mean_a)          eval-sample noise: a paired bootstrap over the eval
                                                      examples (the same draw for every run) of the
                                                      difference of the seed-averaged scores
  t = delta / sqrt(Var), Welch-Satterthwaite degrees of freedom from the seed terms (the bootstrap
  term counts as known), two-sided p-value and 95% interval from Student's t.

Corpus metrics (BLEU, chrF, TER) are recomputed from sacrebleu's sentence statistics on every
resample, as in hfkit.metrics.bootstrap. Without the example term it is exactly Welch's t-test
(scipy's ttest_ind with equal_var=False); with one seed per side it is a z-test on the paired
example bootstrap. Why not a bootstrap over seeds too: with 2-5 seeds, resampling them understates
their variance by (k-1)/k and ignores that it is estimated from so few values; on synthetic
configurations that differ in nothing, a two-level bootstrap with sacrebleu's p-value called 22% of
them significant at p < 0.05, this test about 5% (tests/test_study.py). Per-run example noise is
counted in both terms, which errs on the safe side.

Without per-example scores (objective eval_loss or perplexity, or trials on other eval sets) the
test is Welch's t-test across seeds alone, which needs two seeds on each side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfkit import metrics
from hfkit.metrics.bootstrap import DEFAULT_SEED, resampled_scores

RESAMPLES = 1000
LEVEL = 0.95
ALPHA = 0.05
BOTH = "Welch t-test across seeds + eval-sample variance (paired bootstrap)"
WELCH = "Welch's t-test across seeds"


@dataclass
class SeedRun:
    """One seed's run of a configuration: its score and, when it has them, the metric's inputs."""

    value: float
    predictions: list | None = None  # in the order of `references` (the same for every run)
    references: list | None = None
    ids: list[str] | None = None  # the examples' ids, in that order


def summary(values: list[float]) -> dict[str, Any]:
    """{mean, sd, n, values}: sd is the sample standard deviation (None below two values)."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not kept:
        return {"mean": None, "sd": None, "n": 0, "values": []}
    sd = float(np.std(kept, ddof=1)) if len(kept) > 1 else None
    return {"mean": float(np.mean(kept)), "sd": sd, "n": len(kept), "values": kept}


def test_against(best: list[SeedRun], other: list[SeedRun], metric: str | None, key: str,
                 metric_args: dict | None = None, resamples: int = RESAMPLES, seed: int = DEFAULT_SEED) -> dict | None:
    """{a (best's mean), b, delta (b - a), low, high, p_value, significant, test}, or None when there
    is nothing to test. `metric` is the hfkit metric that reports `key` (None for eval_loss, perplexity)."""
    runs = best + other
    if metric and all(run.predictions is not None and run.references == runs[0].references for run in runs):
        result = seed_and_example_test(metric, key, [(r.predictions, r.references) for r in best],
                                       [(r.predictions, r.references) for r in other], metric_args, resamples, seed)
    else:
        result = welch([r.value for r in best], [r.value for r in other])
    if result is not None:
        result["significant"] = bool(math.isfinite(result["p_value"]) and result["p_value"] < ALPHA)
    return result


def seed_and_example_test(metric: str, key: str, runs_a: list[tuple[list, list]], runs_b: list[tuple[list, list]],
                          metric_args: dict | None = None, n: int = RESAMPLES, seed: int = DEFAULT_SEED,
                          level: float = LEVEL) -> dict[str, Any]:
    """The test of B's mean over seeds against A's, from each run's (predictions, references); every
    run holds the same examples in the same order."""
    scored = [metrics.get(metric).score(predictions, references, metric_args) for predictions, references in
              runs_a + runs_b]
    sampled = [scores[key] for scores in resampled_scores(scored, n, seed)]  # one example draw for all runs
    points = [run.scores[key] for run in scored]
    k = len(runs_a)
    return combined_test(points[:k], np.column_stack(sampled[:k]), points[k:], np.column_stack(sampled[k:]), level)


def combined_test(points_a: list[float], sampled_a: np.ndarray, points_b: list[float], sampled_b: np.ndarray,
                  level: float = LEVEL) -> dict[str, Any]:
    """`points_x`: each seed's score; `sampled_x`: (resamples, seeds) each seed's score on the same
    example resamples. Seed variance + eval-sample variance, tested with Student's t."""
    with np.errstate(invalid="ignore"):
        differences = np.nanmean(sampled_b, axis=1) - np.nanmean(sampled_a, axis=1)
    differences = differences[~np.isnan(differences)]
    examples = float(np.var(differences, ddof=1)) if len(differences) > 1 else 0.0
    result = _t_test(points_a, points_b, examples, level)
    result["test"] = BOTH
    return result


def welch(values_a: list[float], values_b: list[float], level: float = LEVEL) -> dict[str, Any] | None:
    """Welch's t-test of B's seeds against A's (as scipy's ttest_ind(equal_var=False)), with the 95%
    interval of the difference of means; None without two seeds on each side."""
    if len(values_a) < 2 or len(values_b) < 2:
        return None
    result = _t_test(values_a, values_b, 0.0, level)
    result["test"] = WELCH
    return result


def _t_test(values_a: list[float], values_b: list[float], extra_variance: float, level: float) -> dict[str, Any]:
    from scipy import stats

    a, b = float(np.mean(values_a)), float(np.mean(values_b))
    delta = b - a
    seed_terms = [(float(np.var(v, ddof=1)) / len(v), len(v) - 1) for v in (values_a, values_b) if len(v) > 1]
    variance = sum(term for term, _ in seed_terms) + extra_variance
    if variance <= 0:  # no noise measured at all: equal, or different without doubt
        return {"a": a, "b": b, "delta": delta, "low": delta, "high": delta, "p_value": 1.0 if delta == 0 else 0.0}
    denominator = sum(term ** 2 / df for term, df in seed_terms)
    df = variance ** 2 / denominator if denominator > 0 else math.inf
    t = delta / math.sqrt(variance)
    half = float(stats.t.ppf(1 - (1 - level) / 2, df)) * math.sqrt(variance)
    return {"a": a, "b": b, "delta": delta, "low": delta - half, "high": delta + half,
            "p_value": float(2 * stats.t.sf(abs(t), df)), "df": df}
