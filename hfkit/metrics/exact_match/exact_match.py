"""Exact match: the fraction of predictions equal to their reference (0-1), as the Hub's `exact_match`."""

import datasets
import evaluate

from hfkit.metrics.options import exact_match_normalize

_DESCRIPTION = "Share of predictions that equal their reference string exactly (after optional normalisation)."
_KWARGS_DESCRIPTION = """
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


class ExactMatch(evaluate.Metric):
    headline_keys = ("exact_match",)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, regexes_to_ignore=None, ignore_case=False,
                 ignore_punctuation=False, ignore_numbers=False):
        rules = dict(regexes_to_ignore=regexes_to_ignore, ignore_case=ignore_case,
                     ignore_punctuation=ignore_punctuation, ignore_numbers=ignore_numbers)
        predictions = exact_match_normalize(predictions, **rules)
        references = exact_match_normalize(references, **rules)
        if not predictions:
            return {"exact_match": 0.0}
        matches = [p == r for p, r in zip(predictions, references)]
        return {"exact_match": sum(matches) / len(matches)}
