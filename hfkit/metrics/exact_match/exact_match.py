"""Exact match: the fraction of predictions equal to their reference (0-1), as the Hub's `exact_match`."""

import re
import string

import datasets
import evaluate

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
        predictions = list(predictions)
        references = list(references)
        for pattern in regexes_to_ignore or []:
            predictions = [re.sub(pattern, "", p) for p in predictions]
            references = [re.sub(pattern, "", r) for r in references]
        removed = (string.punctuation if ignore_punctuation else "") + (string.digits if ignore_numbers else "")
        table = str.maketrans("", "", removed)
        if ignore_case:
            predictions = [p.lower() for p in predictions]
            references = [r.lower() for r in references]
        predictions = [p.translate(table) for p in predictions]
        references = [r.translate(table) for r in references]
        if not predictions:
            return {"exact_match": 0.0}
        matches = [p == r for p, r in zip(predictions, references)]
        return {"exact_match": sum(matches) / len(matches)}
