"""Exact match: the fraction of predictions equal to their reference (0-1), as the Hub's
`exact_match`; computed by hfkit's `exact_match` spec (hfkit/metrics/builtin/exact_match.py)."""

import datasets

from hfkit.metrics.builtin.exact_match import METRIC
from hfkit.metrics import module


class ExactMatch(module.SpecMetric):
    """
    Args:
        predictions: list of strings.
        references: list of strings, one per prediction.
        regexes_to_ignore: list of regular expressions removed from both sides first.
        ignore_case: lower-case both sides.
        ignore_punctuation: remove string.punctuation from both sides.
        ignore_numbers: remove digits from both sides.
    Returns:
        exact_match: mean of the per-example matches, between 0 and 1.
    """

    spec = METRIC

    def input_features(self):
        return datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")})
