"""SQuAD v1.1 exact match and F1 (0-100), as the official v1.1 evaluation script and the Hub `squad`.

Predictions are {id, prediction_text}, references {id, answers: {text, answer_start}}; a question
scores its best gold answer, and a question without a prediction scores 0. Normalisation:
lower-case, no punctuation, no articles, single spaces.
"""

from hfkit.metrics.spec import MetricSpec
from hfkit.metrics.squad_answers import exact, f1_v1


def answers(predictions, references) -> dict[str, list[float]]:
    predicted = {p["id"]: p["prediction_text"] for p in predictions}
    scores: dict[str, list[float]] = {"exact_match": [], "f1": []}
    for reference in references:
        prediction, golds = predicted.get(reference["id"]), reference["answers"]["text"]
        found = prediction is not None
        scores["exact_match"].append(100.0 * max(exact(prediction, g) for g in golds) if found else 0.0)
        scores["f1"].append(100.0 * max(f1_v1(prediction, g) for g in golds) if found else 0.0)
    return scores


METRIC = MetricSpec(
    name="squad", per_example=answers, batched=True, keys=("exact_match", "f1"), binary=("exact_match",),
    scale=100.0, references="squad", description="SQuAD v1.1 exact match and F1.")
