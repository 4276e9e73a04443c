"""SQuAD v2.0 scores (0-100), as the official v2.0 evaluation script and the Hub's `squad_v2`."""

import evaluate

from hfkit.metrics.squad_answers import exact, f1_v2, normalize_answer, squad_features

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of {"id": str, "prediction_text": str, "no_answer_probability": float}
        ("" means "no answer").
    references: list of {"id": str, "answers": {"text": [...], "answer_start": [...]}}; no text means
        the question has no answer.
    no_answer_threshold: a prediction whose no_answer_probability exceeds it counts as "no answer" (1.0).
Returns:
    exact, f1, total, and the same for HasAns_* and NoAns_* questions, plus best_exact, best_f1 and
    the no-answer-probability thresholds that reach them.
"""


class SquadV2(evaluate.Metric):
    headline_keys = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")

    def _info(self):
        return evaluate.MetricInfo(
            description="SQuAD v2.0 exact match and F1 with unanswerable questions.",
            citation="Rajpurkar et al., 2018. Know What You Don't Know: Unanswerable Questions for SQuAD.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=squad_features(no_answer_probability=True),
        )

    def _compute(self, predictions, references, no_answer_threshold=1.0):
        predicted = {p["id"]: p["prediction_text"] for p in predictions}
        no_answer_probability = {p["id"]: p["no_answer_probability"] for p in predictions}
        has_answer = {r["id"]: bool(r["answers"]["text"]) for r in references}
        exact_raw, f1_raw = {}, {}
        for reference in references:
            qid = reference["id"]
            if qid not in predicted:
                continue  # the official script skips (and reports) questions without a prediction
            golds = [text for text in reference["answers"]["text"] if normalize_answer(text)] or [""]
            exact_raw[qid] = max(exact(predicted[qid], gold) for gold in golds)
            f1_raw[qid] = max(f1_v2(predicted[qid], gold) for gold in golds)
        exact_scores = _apply_threshold(exact_raw, no_answer_probability, has_answer, no_answer_threshold)
        f1_scores = _apply_threshold(f1_raw, no_answer_probability, has_answer, no_answer_threshold)
        result = _summary(exact_scores, f1_scores, list(exact_scores))
        for name, wanted in (("HasAns", True), ("NoAns", False)):
            qids = [qid for qid, answered in has_answer.items() if answered == wanted]
            if qids:
                result.update({f"{name}_{key}": value for key, value in _summary(exact_scores, f1_scores, qids).items()})
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, threshold = _best_threshold(predicted, raw, no_answer_probability, has_answer)
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, threshold
        return result


def _apply_threshold(scores, no_answer_probability, has_answer, threshold):
    return {qid: float(not has_answer[qid]) if no_answer_probability[qid] > threshold else score
            for qid, score in scores.items()}


def _summary(exact_scores, f1_scores, qids):
    total = len(qids)
    return {"exact": 100.0 * sum(exact_scores[q] for q in qids) / total,
            "f1": 100.0 * sum(f1_scores[q] for q in qids) / total, "total": total}


def _best_threshold(predicted, scores, no_answer_probability, has_answer):
    """The official find_best_thresh: the best score reachable by one no-answer threshold."""
    score = best = sum(1 for answered in has_answer.values() if not answered)
    threshold = 0.0
    for qid in sorted(no_answer_probability, key=lambda q: no_answer_probability[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            score += scores[qid]
        elif predicted[qid]:
            score -= 1
        if score > best:
            best, threshold = score, no_answer_probability[qid]
    return 100.0 * best / len(scores), threshold
