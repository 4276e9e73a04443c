"""SQuAD v1.1 exact match and F1 (0-100), as the official v1.1 evaluation script and the Hub's
`squad`; computed by hfkit's `squad` spec (hfkit/metrics/builtin/squad.py)."""

from hfkit.metrics.builtin.squad import METRIC
from hfkit.metrics import module


class Squad(module.SpecMetric):
    """
    Args:
        predictions: list of {"id": str, "prediction_text": str}.
        references: list of {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}.
    Returns:
        exact_match: share of questions whose normalised prediction equals a normalised gold answer (0-100).
        f1: token F1 against the best-matching gold answer, averaged over questions (0-100).
    A question without a prediction scores 0. Normalisation: lower-case, no punctuation, no articles,
    single spaces.
    """

    spec = METRIC
    citation = "Rajpurkar et al., 2016. SQuAD: 100,000+ Questions for Machine Comprehension of Text."
