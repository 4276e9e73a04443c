"""SQuAD v2.0 scores (0-100), as the official v2.0 evaluation script and the Hub's `squad_v2`.

Predictions are {id, prediction_text, no_answer_probability} ("" means "no answer"), references
{id, answers}; a question without answer texts has no answer. Each question scores its best gold
answer, then `no_answer_threshold`: a prediction whose no-answer probability exceeds it counts as
"no answer". HasAns_* and NoAns_* hold the same per-question numbers for questions of that kind (NaN
for the others, so each key's mean over its own questions is the corpus number). Every question
needs a prediction. Details: the counts (`total`, ...) and the official `best_exact`/`best_f1` with
the no-answer-probability thresholds that reach them, all in float64.
"""

from hfkit.metrics.spec import MetricSpec
from hfkit.metrics.squad_answers import exact, f1_v2, normalize_answer

KEYS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")


def answers(predictions, references, no_answer_threshold=1.0) -> dict[str, list]:
    """Per question: the scores of KEYS, and (for the details) its raw scores before the
    threshold, no-answer probability, whether it has an answer and whether one was predicted."""
    by_id = {p["id"]: p for p in predictions}
    parts: dict[str, list] = {key: [] for key in ("exact", "f1", "raw_exact", "raw_f1", "probability", "answered",
                                                  "predicted")}
    for reference in references:
        if reference["id"] not in by_id:
            raise ValueError(f"squad_v2: question {reference['id']!r} has no prediction")
        prediction = by_id[reference["id"]]
        answered = bool(reference["answers"]["text"])
        golds = [text for text in reference["answers"]["text"] if normalize_answer(text)] or [""]
        text = prediction["prediction_text"]
        raw = (max(exact(text, g) for g in golds), max(f1_v2(text, g) for g in golds))
        pair = (float(not answered),) * 2 if prediction["no_answer_probability"] > no_answer_threshold else raw
        for key, value in (("exact", 100.0 * pair[0]), ("f1", 100.0 * pair[1]), ("raw_exact", raw[0]),
                           ("raw_f1", raw[1]), ("probability", prediction["no_answer_probability"]),
                           ("answered", answered), ("predicted", bool(text))):
            parts[key].append(value)
    for subset, wanted in (("HasAns", True), ("NoAns", False)):
        if wanted in parts["answered"]:
            for key in ("exact", "f1"):
                parts[f"{subset}_{key}"] = [v if a == wanted else None for v, a in zip(parts[key], parts["answered"])]
    return parts


def details(parts, references, no_answer_threshold=1.0) -> dict:
    answered = parts["answered"]
    found = {"total": len(answered)}
    for subset, count in (("HasAns", sum(answered)), ("NoAns", len(answered) - sum(answered))):
        if count:
            found[f"{subset}_total"] = count
    for key in ("exact", "f1"):
        found[f"best_{key}"], found[f"best_{key}_thresh"] = _best_threshold(parts, parts[f"raw_{key}"])
    return found


def _best_threshold(parts, raw: list) -> tuple[float, float]:
    """The official find_best_thresh: the best score reachable by one no-answer threshold."""
    score = best = sum(1 for answered in parts["answered"] if not answered)
    threshold = 0.0
    for i in sorted(range(len(raw)), key=lambda i: parts["probability"][i]):
        if parts["answered"][i]:
            score += raw[i]
        elif parts["predicted"][i]:
            score -= 1
        if score > best:
            best, threshold = score, parts["probability"][i]
    return 100.0 * best / len(raw), threshold


METRIC = MetricSpec(
    name="squad_v2", per_example=answers, batched=True, keys=KEYS, binary=("exact", "HasAns_exact", "NoAns_exact"),
    overview=("exact", "f1"), scale=100.0, references="squad", details=details,
    description="SQuAD v2.0 exact match and F1 with unanswerable questions.")
