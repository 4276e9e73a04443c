"""Bootstrap confidence intervals and paired significance tests for hfkit's metrics.

A score on a test set of a few hundred examples moves by a point or more when the examples change;
these say how much, and whether system B really beats system A on the same examples.

Each resample draws len(examples) indices with replacement (`numpy.random.default_rng(seed)`,
`rng.choice(N, size=(n, N))`, the call and default seed 12345 of sacrebleu's `paired_bs`, so
with the same seed the resamples are sacrebleu's). A resample's score is recomputed from its
examples' parts as the metric's spec says (`hfkit.metrics.spec`), never averaged from sentence
scores: BLEU, chrF and TER sum sacrebleu's per-sentence statistics over the resample (a count
matrix times the statistics, one BLAS product) and score the sums with `from_stats`, exactly
sacrebleu's formula; mean metrics (ROUGE, exact_match, SQuAD and squad_v2's HasAns_/NoAns_ subsets)
are resampled means of per-example scores, where a subset absent from a resample gives NaN and
NaNs are left out of quantiles; a custom aggregate (macro-F1) is computed on each resample's parts.
Intervals are percentile intervals (numpy's linear quantiles of the resampled scores). `seed=None`
draws fresh entropy from the OS: a different answer each run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hfkit.metrics.spec import MetricSpec, Scored

DEFAULT_SEED = 12345  # sacrebleu's default SACREBLEU_SEED
_CHUNK_ELEMENTS = 4_000_000  # resamples are drawn and summed this many indices at a time (32 MB)


def confidence_intervals(name, predictions: list, references: list, metric_args: dict[str, Any] | None = None,
                         n: int = 1000, seed: int | None = DEFAULT_SEED,
                         level: float = 0.95) -> dict[str, tuple[float, float]]:
    """{key: (low, high)}: the `level` percentile bootstrap interval of each score of metric `name`
    (a name in eval.metrics, or a MetricSpec; keys as in `hfkit.metrics.compute`'s scores)."""
    _check_settings(n, level)
    return intervals(_spec(name).score(predictions, references, metric_args), n, seed, level)


def intervals(scored: Scored, n: int = 1000, seed: int | None = DEFAULT_SEED,
              level: float = 0.95) -> dict[str, tuple[float, float]]:
    """The bootstrap intervals of one metric run (`MetricSpec.score`), from its own parts."""
    _check_settings(n, level)
    sampled = resampled_scores([scored], n, seed)[0]
    return {key: _interval(sampled[key], level) for key in scored.scores}


def paired_bootstrap(name, predictions_a: list, predictions_b: list, references: list,
                     metric_args: dict[str, Any] | None = None, n: int = 1000, seed: int | None = DEFAULT_SEED,
                     level: float = 0.95) -> dict[str, dict[str, float]]:
    """Is system B's score different from system A's on these examples? Per score key:

    a, b: the two corpus scores; delta: b - a (for TER, lower is better, so a negative delta is an
    improvement); low, high: the `level` percentile interval of delta over resamples that pick the
    same examples for both systems; p_value: sacrebleu's paired bootstrap p-value (`paired_bs`,
    after Koehn 2004): the share of resamples whose |delta*| - mean|delta*| is at least the observed
    |delta|, as (count + 1) / (n + 1). One change: sacrebleu counts only strictly greater values,
    which gives two identical systems p = 1 / (n + 1), "significant"; counting ties (>=) gives them
    p = 1 and changes nothing when no resample ties the observed delta exactly.
    """
    spec = _spec(name)
    return paired(spec.score(predictions_a, references, metric_args), spec.score(predictions_b, references, metric_args),
                  n, seed, level)


def paired(scored_a: Scored, scored_b: Scored, n: int = 1000, seed: int | None = DEFAULT_SEED,
           level: float = 0.95) -> dict[str, dict[str, float]]:
    """`paired_bootstrap` of two runs of one metric on the same examples (see there)."""
    _check_settings(n, level)
    sampled_a, sampled_b = resampled_scores([scored_a, scored_b], n, seed)  # one draw: the same resamples for both
    results = {}
    for key in scored_a.scores:
        if key not in scored_b.scores:
            continue
        a, b = scored_a.scores[key], scored_b.scores[key]
        deltas = sampled_b[key] - sampled_a[key]
        deltas = deltas[~np.isnan(deltas)]
        low, high = _interval(deltas, level)
        results[key] = {"a": a, "b": b, "delta": b - a, "low": low, "high": high,
                        "p_value": paired_p_value(b - a, deltas)}
    return results


def paired_p_value(observed_delta: float, sampled_deltas: np.ndarray) -> float:
    """sacrebleu's `_paired_bs_test` p-value, ties counted (see `paired_bootstrap`)."""
    differences = np.abs(np.asarray(sampled_deltas, dtype=np.float64))
    if not len(differences):
        return float("nan")
    null = differences - differences.mean()  # |delta*| shifted to mean 0: the no-difference hypothesis
    count = int(np.sum(null >= abs(observed_delta)))
    return (count + 1) / (len(null) + 1)


def resampled_sums(columns: np.ndarray, n: int, seed: int | None) -> np.ndarray:
    """(n, k): column sums of `columns` (N, k) over n bootstrap resamples of its N rows."""
    return np.vstack([_counts(indices) @ columns for indices in draws(len(columns), n, seed)])


def draws(rows: int, n: int, seed: int | None):
    """n bootstrap resamples of `rows` indices, in chunks of `_CHUNK_ELEMENTS` indices from one
    generator: the same numbers as one `rng.choice(rows, size=(n, rows))` call."""
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n, _CHUNK_ELEMENTS // max(rows, 1)))
    for start in range(0, n, chunk):
        yield rng.choice(rows, size=(min(chunk, n - start), rows), replace=True)


def _counts(indices: np.ndarray) -> np.ndarray:
    """(size, rows): how often each row was drawn in each resample. A resample's sum is then its
    count vector times the columns: one BLAS product for a chunk of resamples."""
    size, rows = indices.shape
    flat = (indices + (np.arange(size) * rows)[:, None]).ravel()
    return np.bincount(flat, minlength=size * rows).reshape(size, rows).astype(np.float64)


def resampled_scores(runs: list[Scored], n: int, seed: int | None) -> list[dict[str, np.ndarray]]:
    """Each run's scores on the same n resamples of the examples ({key: n scores} per run): runs of
    one metric on the same examples (two systems; several seeds in hfkit.study_stats)."""
    rows = len(runs[0].parts) if runs[0].columns is None else len(runs[0].columns)
    chunks: list[list[dict[str, np.ndarray]]] = [[] for _ in runs]
    for indices in draws(rows, n, seed):
        counts = _counts(indices) if any(run.columns is not None for run in runs) else None
        for run, out in zip(runs, chunks):
            if run.columns is not None:
                out.append(run.rescore(counts @ run.columns))
            else:  # a custom aggregate: the metric of each resample's parts
                scores = [run.rescore([run.parts[i] for i in row]) for row in indices]
                out.append({key: np.array([s.get(key, np.nan) for s in scores]) for key in run.scores})
    return [{key: np.concatenate([chunk[key] for chunk in out]) for key in run.scores}
            for run, out in zip(runs, chunks)]


def _spec(name) -> MetricSpec:
    from hfkit.metrics.registry import get

    return name if isinstance(name, MetricSpec) else get(name)


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
