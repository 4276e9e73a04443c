"""Bootstrap confidence intervals and paired significance tests for hfkit's metrics.

A score on a test set of a few hundred examples moves by a point or more when the examples change;
these say how much, and whether system B really beats system A on the same examples.

Each resample draws len(examples) indices with replacement (`numpy.random.default_rng(seed)`,
`rng.choice(N, size=(n, N))`, the call and default seed 12345 of sacrebleu's `paired_bs`, so
with the same seed the resamples are sacrebleu's). Corpus metrics are recomputed on every
resample, never averaged from sentence scores: BLEU, chrF and TER sum sacrebleu's per-sentence
statistics over the resample (a count matrix times the statistics, one BLAS product) and score the
sums with `from_stats`, exactly sacrebleu's formula. Mean-of-examples metrics (ROUGE,
exact_match, SQuAD and squad_v2's HasAns_/NoAns_ subsets) are resampled means of `per_example`
scores; a subset absent from a resample gives NaN there, and NaNs are left out of quantiles.
Intervals are percentile intervals (numpy's linear quantiles of the resampled scores). `seed=None`
draws fresh entropy from the OS: a different answer each run.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hfkit.metrics import from_stats, options
from hfkit.metrics.per_example import check_inputs, cache_references, example_scores, sentence_stats

DEFAULT_SEED = 12345  # sacrebleu's default SACREBLEU_SEED
_CHUNK_ELEMENTS = 4_000_000  # resamples are drawn and summed this many indices at a time (32 MB)


def confidence_intervals(name: str, predictions: list, references: list, metric_args: dict[str, Any] | None = None,
                         n: int = 1000, seed: int | None = DEFAULT_SEED,
                         level: float = 0.95) -> dict[str, tuple[float, float]]:
    """{headline key: (low, high)}: the `level` percentile bootstrap interval of each headline score
    of metric `name` (keys as in `hfkit.metrics.compute`'s scores, e.g. "sacrebleu", "rougeL")."""
    _check_settings(n, level)
    points, columns, rescore = _system(name, predictions, references, metric_args)
    sampled = rescore(resampled_sums(columns, n, seed))
    return {key: _interval(sampled[key], level) for key in points}


def paired_bootstrap(name: str, predictions_a: list, predictions_b: list, references: list,
                     metric_args: dict[str, Any] | None = None, n: int = 1000, seed: int | None = DEFAULT_SEED,
                     level: float = 0.95) -> dict[str, dict[str, float]]:
    """Is system B's score different from system A's on these examples? Per headline key:

    a, b: the two corpus scores; delta: b - a (for TER, lower is better, so a negative delta is an
    improvement); low, high: the `level` percentile interval of delta over resamples that pick the
    same examples for both systems; p_value: sacrebleu's paired bootstrap p-value (`paired_bs`,
    after Koehn 2004): the share of resamples whose |delta*| - mean|delta*| is at least the observed
    |delta|, as (count + 1) / (n + 1). One change: sacrebleu counts only strictly greater values,
    which gives two identical systems p = 1 / (n + 1), "significant"; counting ties (>=) gives them
    p = 1 and changes nothing when no resample ties the observed delta exactly.
    """
    _check_settings(n, level)
    metric = None
    if name in options.SACREBLEU_BUILDERS:  # extract the references' n-grams once, for both systems
        metric = cache_references(options.SACREBLEU_BUILDERS[name](**(metric_args or {})), references)
    points_a, columns_a, rescore_a = _system(name, predictions_a, references, metric_args, metric)
    points_b, columns_b, rescore_b = _system(name, predictions_b, references, metric_args, metric)
    sums = resampled_sums(np.hstack([columns_a, columns_b]), n, seed)  # one draw: the same resamples for both
    sampled_a, sampled_b = rescore_a(sums[:, :columns_a.shape[1]]), rescore_b(sums[:, columns_a.shape[1]:])
    results = {}
    for key in points_a.keys() & points_b.keys():
        a, b = points_a[key], points_b[key]
        deltas = sampled_b[key] - sampled_a[key]
        deltas = deltas[~np.isnan(deltas)]
        low, high = _interval(deltas, level)
        results[key] = {"a": a, "b": b, "delta": b - a, "low": low, "high": high,
                        "p_value": paired_p_value(b - a, deltas)}
    return {key: results[key] for key in points_a if key in results}


def paired_p_value(observed_delta: float, sampled_deltas: np.ndarray) -> float:
    """sacrebleu's `_paired_bs_test` p-value, ties counted (see `paired_bootstrap`)."""
    differences = np.abs(np.asarray(sampled_deltas, dtype=np.float64))
    if not len(differences):
        return float("nan")
    null = differences - differences.mean()  # |delta*| shifted to mean 0: the no-difference hypothesis
    count = int(np.sum(null >= abs(observed_delta)))
    return (count + 1) / (len(null) + 1)


def resampled_sums(columns: np.ndarray, n: int, seed: int | None) -> np.ndarray:
    """(n, k): column sums of `columns` (N, k) over n bootstrap resamples of its N rows.

    A resample's sum is its count vector (how often each row was drawn) times `columns`; the
    draws come in chunks of `_CHUNK_ELEMENTS` indices from one generator, which yields the same
    numbers as one `rng.choice(N, size=(n, N))` call.
    """
    rows = len(columns)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n, _CHUNK_ELEMENTS // max(rows, 1)))
    sums = np.empty((n, columns.shape[1]), dtype=np.float64)
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        indices = rng.choice(rows, size=(size, rows), replace=True)
        flat = (indices + (np.arange(size) * rows)[:, None]).ravel()
        counts = np.bincount(flat, minlength=size * rows).reshape(size, rows).astype(np.float64)
        sums[start:start + size] = counts @ columns
    return sums


def _system(name, predictions, references, metric_args, metric=None):
    """(point scores, per-example columns to resample, sums -> {key: resampled scores}); `metric`:
    a sacrebleu object with the references cached."""
    check_inputs(name, predictions, references)
    if name in options.SACREBLEU_BUILDERS:
        if metric is None:
            metric = options.SACREBLEU_BUILDERS[name](**(metric_args or {}))
        stats = sentence_stats(metric, predictions, references if metric._ref_cache is None else None)
        point = metric._aggregate_and_compute(stats).score  # = corpus_score(...).score
        key = name
        return {key: point}, np.asarray(stats, dtype=np.float64), lambda sums: {key: from_stats.scores(sums, metric)}
    scores = example_scores(name, predictions, references, metric_args)
    keys = list(scores)
    columns, points = [], {}
    for key in keys:
        values = np.asarray(scores[key], dtype=np.float64)
        valid = ~np.isnan(values)
        kept = [v for v, ok in zip(scores[key], valid) if ok]
        points[key] = sum(kept) / len(kept)  # as the corpus modules: Python's sum over examples
        columns += [np.where(valid, values, 0.0), valid.astype(np.float64)]
    rescore: Callable = lambda sums: {key: _ratio(sums[:, 2 * i], sums[:, 2 * i + 1]) for i, key in enumerate(keys)}
    return points, np.column_stack(columns), rescore


def _ratio(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, totals / counts, np.nan)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    samples = samples[~np.isnan(samples)]
    if not len(samples):
        return (float("nan"), float("nan"))
    low, high = np.quantile(samples, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def _check_settings(n: int, level: float) -> None:
    if n < 1:
        raise ValueError(f"bootstrap: n must be at least 1, not {n}")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap: level must be between 0 and 1, not {level}")
