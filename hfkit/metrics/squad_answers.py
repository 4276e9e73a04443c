"""SQuAD answer comparison, as defined by the official evaluation scripts (v1.1 and v2.0)."""

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop articles (a, an, the), collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact(prediction: str, gold: str) -> int:
    return int(normalize_answer(prediction) == normalize_answer(gold))


def f1_v1(prediction: str, gold: str) -> float:
    """v1.1: token F1; no common token gives 0 (an empty answer included)."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def f1_v2(prediction: str, gold: str) -> float:
    """v2.0: as v1.1, except that when either side is empty, F1 is 1 if both are and 0 otherwise."""
    predicted = normalize_answer(prediction).split() if prediction else []
    expected = normalize_answer(gold).split() if gold else []
    if not predicted or not expected:
        return float(predicted == expected)
    return f1_v1(prediction, gold)


def squad_features(no_answer_probability: bool):
    """The Hub modules' input shapes: predictions {id, prediction_text[, no_answer_probability]},
    references {id, answers: {text, answer_start}}."""
    import datasets  # here, not above: per-example scores use the comparisons without it

    prediction = {"id": datasets.Value("string"), "prediction_text": datasets.Value("string")}
    if no_answer_probability:
        # float64, as the per-example path compares it: float32 made a threshold of 0.9 come back as 0.8999999762
        prediction["no_answer_probability"] = datasets.Value("float64")
    answers = datasets.Sequence({"text": datasets.Value("string"), "answer_start": datasets.Value("int32")})
    return datasets.Features({"predictions": prediction, "references": {"id": datasets.Value("string"), "answers": answers}})
