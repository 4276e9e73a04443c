"""SQuAD v1.1 exact match and F1 (0-100), as the official v1.1 evaluation script and the Hub's `squad`."""

import evaluate

from hfkit.metrics.squad_answers import exact, f1_v1, squad_features

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str}.
    references: list of {"id": str, "answers": {"text": [str, ...], "answer_start": [int, ...]}}.
Returns:
    exact_match: share of questions whose normalised prediction equals a normalised gold answer (0-100).
    f1: token F1 against the best-matching gold answer, averaged over questions (0-100).
A question without a prediction scores 0. Normalisation: lower-case, no punctuation, no articles,
single spaces.
"""


class Squad(evaluate.Metric):
    headline_keys = ("exact_match", "f1")

    def _info(self):
        return evaluate.MetricInfo(
            description="SQuAD v1.1 exact match and F1.",
            citation="Rajpurkar et al., 2016. SQuAD: 100,000+ Questions for Machine Comprehension of Text.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=squad_features(no_answer_probability=False),
        )

    def _compute(self, predictions, references):
        predicted = {p["id"]: p["prediction_text"] for p in predictions}
        total = exact_sum = f1_sum = 0.0
        for reference in references:
            total += 1
            if reference["id"] not in predicted:
                continue  # the official script: an unanswered question scores 0
            prediction, golds = predicted[reference["id"]], reference["answers"]["text"]
            exact_sum += max(exact(prediction, gold) for gold in golds)
            f1_sum += max(f1_v1(prediction, gold) for gold in golds)
        return {"exact_match": 100.0 * exact_sum / total, "f1": 100.0 * f1_sum / total}
