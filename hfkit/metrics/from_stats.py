"""sacrebleu's BLEU, chrF and TER from sufficient statistics, vectorised over many stat vectors.

sacrebleu scores a corpus by summing per-sentence statistics (n-gram matches, lengths, edits) and
turning the sum into a score (`Metric._compute_score_from_stats`). Bootstrap resampling needs that
last step for a thousand resampled sums, and sentence-level scores need it once per sentence;
calling sacrebleu's scalar Python code for each is the slow part of its own `paired_bs`. The
functions here take a (rows, stats) array and return one score per row, equal bit for bit to
`metric._compute_score_from_stats(row)`: same operations in the same order, in float64. Only log
and exp go through Python's `math`, element by element, because numpy's SIMD versions differ from
libm in the last bit for a few percent of inputs (a handful of calls per row, so still cheap).

Reads the metric objects' own settings (smoothing, orders, beta) and relies on the statistics
layout of sacrebleu 2.x (the same internals its significance.py uses).
"""

from __future__ import annotations

import math

import numpy as np
import sacrebleu


def _exp(values: np.ndarray) -> np.ndarray:
    return np.array([math.exp(v) for v in values.tolist()], dtype=np.float64)


def _my_log(values: np.ndarray) -> np.ndarray:
    """sacrebleu.utils.my_log: log, with log(0) floored to -9999999999."""
    return np.array([math.log(v) if v != 0.0 else -9999999999.0 for v in values.tolist()], dtype=np.float64)


def bleu_scores(stats: np.ndarray, metric: sacrebleu.BLEU) -> np.ndarray:
    """`BLEU.compute_bleu` per row of [sys_len, ref_len, correct_1..N, total_1..N]."""
    stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    order, method = metric.max_ngram_order, metric.smooth_method
    value = metric.smooth_value if metric.smooth_value is not None else sacrebleu.BLEU.SMOOTH_DEFAULTS[method]
    rows = len(stats)
    sys_len, ref_len = np.trunc(stats[:, 0]), np.trunc(stats[:, 1])
    correct, total = stats[:, 2:2 + order].copy(), stats[:, 2 + order:2 + 2 * order].copy()

    bp = np.ones(rows)
    short = (sys_len < ref_len) & (sys_len > 0)
    bp[short] = _exp(1 - ref_len[short] / sys_len[short])
    bp[(sys_len < ref_len) & (sys_len == 0)] = 0.0
    any_match = (correct != 0).any(axis=1)  # no match at all: score 0 before any smoothing (#141)

    precisions = np.zeros((rows, order))
    smooth_mteval = np.ones(rows)
    eff_order = np.full(rows, order)
    live = np.ones(rows, dtype=bool)  # False once an order has no n-grams (sacrebleu's `break`)
    with np.errstate(divide="ignore", invalid="ignore"):
        for n in range(order):
            if method == "add-k" and n > 0:
                correct[:, n] += value
                total[:, n] += value
            live &= total[:, n] != 0
            if metric.effective_order:
                eff_order[live] = n + 1
            zero = live & (correct[:, n] == 0)
            if method == "exp":
                smooth_mteval[zero] *= 2
                precisions[zero, n] = 100. / (smooth_mteval[zero] * total[zero, n])
            elif method == "floor":
                precisions[zero, n] = 100. * value / total[zero, n]
            hit = live & (correct[:, n] != 0)
            precisions[hit, n] = 100. * correct[hit, n] / total[hit, n]
    log_sum = np.zeros(rows)  # summed left to right, as Python's sum() over precisions[:eff_order]
    for n in range(order):
        log_sum = np.where(n < eff_order, log_sum + _my_log(precisions[:, n]), log_sum)
    scores = bp * _exp(log_sum / eff_order)
    return np.where(any_match, scores, 0.0)


def chrf_scores(stats: np.ndarray, metric: sacrebleu.CHRF) -> np.ndarray:
    """`CHRF._compute_f_score` per row of [hyp, ref, match] triplets, char orders then word orders."""
    stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    rows, eps, factor = len(stats), 1e-16, metric.beta ** 2
    score, avg_prec, avg_rec = np.zeros(rows), np.zeros(rows), np.zeros(rows)
    effective_order = np.zeros(rows, dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(metric.order):
            n_hyp, n_ref, n_match = stats[:, 3 * i], stats[:, 3 * i + 1], stats[:, 3 * i + 2]
            prec = np.where(n_hyp > 0, n_match / n_hyp, eps)
            rec = np.where(n_ref > 0, n_match / n_ref, eps)
            denom = factor * prec + rec
            score = score + np.where(denom > 0, (1 + factor) * prec * rec / denom, eps)
            both = (n_hyp > 0) & (n_ref > 0)
            avg_prec = np.where(both, avg_prec + prec, avg_prec)
            avg_rec = np.where(both, avg_rec + rec, avg_rec)
            effective_order += both
        if metric.eps_smoothing:
            return 100 * score / metric.order
        avg_prec = np.where(effective_order == 0, 0.0, avg_prec / effective_order)
        avg_rec = np.where(effective_order == 0, 0.0, avg_rec / effective_order)
        f = (1 + factor) * avg_prec * avg_rec
        f = f / ((factor * avg_prec) + avg_rec)
    return np.where(avg_prec + avg_rec != 0, 100 * f, 0.0)


def ter_scores(stats: np.ndarray, metric: sacrebleu.TER | None = None) -> np.ndarray:
    """`TER._compute_score_from_stats` per row of [edits, reference length]."""
    stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
    edits, ref_len = stats[:, 0], stats[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(ref_len > 0, edits / ref_len, np.where(edits > 0, 1.0, 0.0))
    return 100 * score


def scores(stats: np.ndarray, metric) -> np.ndarray:
    """One score per row of summed statistics, for any of sacrebleu's BLEU, CHRF, TER objects."""
    for kind, function in ((sacrebleu.BLEU, bleu_scores), (sacrebleu.CHRF, chrf_scores), (sacrebleu.TER, ter_scores)):
        if isinstance(metric, kind):
            return function(stats, metric)
    raise TypeError(f"no vectorised formula for {type(metric).__name__}")


def sentence_stats(metric, predictions: list, references: list) -> list[list]:
    """sacrebleu's per-sentence sufficient statistics, one list per prediction: the rows whose sum
    `metric._aggregate_and_compute` scores (its `_extract_corpus_statistics`, as its own
    significance tests use it)."""
    from hfkit.metrics.references import reference_streams

    return metric._extract_corpus_statistics(list(predictions), reference_streams(list(references)))


def signature(metric, references: list) -> str:
    """sacrebleu's signature of `metric` for these references (their count per prediction is part of it)."""
    from hfkit.metrics.references import reference_streams

    metric.num_refs = len(reference_streams(list(references)))  # what corpus_score sets while reading them
    return str(metric.get_signature())
