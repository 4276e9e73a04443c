"""chrF / chrF++ through sacrebleu, with the keys and 0-100 scale of the Hub's `chrf` module;
computed by hfkit's `chrf` spec (hfkit/metrics/builtin/chrf.py)."""

from hfkit.metrics.builtin.chrf import METRIC
from hfkit.metrics import module


class Chrf(module.SpecMetric):
    """
    Args:
        predictions: list of hypotheses.
        references: list of references per prediction (a string, or a list with the same count for every prediction).
        char_order (6), word_order (0), beta (2), lowercase, whitespace, eps_smoothing: as in sacrebleu.
    Returns:
        score, char_order, word_order, beta, signature.
    """

    spec = METRIC
    renamed = {"chrf": "score"}
    citation = "Popovic, 2015. chrF: character n-gram F-score for automatic MT evaluation."
