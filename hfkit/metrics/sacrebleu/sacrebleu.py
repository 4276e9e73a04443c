"""BLEU through sacrebleu, with the keys and 0-100 scale of the Hub's `sacrebleu` module plus the
signature; computed by hfkit's `sacrebleu` spec (hfkit/metrics/builtin/sacrebleu.py)."""

from hfkit.metrics.builtin.sacrebleu import METRIC
from hfkit.metrics import module


class Sacrebleu(module.SpecMetric):
    """
    Args:
        predictions: list of detokenized hypotheses.
        references: list of references per prediction (a string, or a list with the same count for every prediction).
        smooth_method: 'exp' (default), 'floor', 'add-k' or 'none'.
        smooth_value: for 'floor' and 'add-k'.
        tokenize: '13a' (default), 'intl', 'zh', 'char', 'none', ...
        lowercase, force, use_effective_order: as in sacrebleu.
    Returns:
        score, counts, totals, precisions, bp, sys_len, ref_len, signature.
    """

    spec = METRIC
    renamed = {"sacrebleu": "score"}
    citation = "Post, 2018. A Call for Clarity in Reporting BLEU Scores."
