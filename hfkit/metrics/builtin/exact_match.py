"""Exact match (0-1): the share of predictions equal to their reference, as the Hub `exact_match`
module, with its normalisation options (applied to both sides, in its order)."""

from hfkit.metrics.options import exact_match_normalize
from hfkit.metrics.spec import MetricSpec


def match(prediction, reference, regexes_to_ignore=None, ignore_case=False, ignore_punctuation=False,
          ignore_numbers=False) -> float:
    predicted, expected = exact_match_normalize([prediction, reference], regexes_to_ignore=regexes_to_ignore,
                                                ignore_case=ignore_case, ignore_punctuation=ignore_punctuation,
                                                ignore_numbers=ignore_numbers)
    return float(predicted == expected)


METRIC = MetricSpec(
    name="exact_match", per_example=match, binary=("exact_match",), unit="fraction, 0-1",
    description="Share of predictions that equal their reference string exactly (after optional normalisation).")
