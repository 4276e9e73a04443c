"""SQuAD v2.0 scores (0-100), as the official v2.0 evaluation script and the Hub's `squad_v2`;
computed by hfkit's `squad_v2` spec (hfkit/metrics/builtin/squad_v2.py)."""

from hfkit.metrics.builtin.squad_v2 import METRIC
from hfkit.metrics import module
from hfkit.metrics.squad_answers import squad_features


class SquadV2(module.SpecMetric):
    """
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

    spec = METRIC
    citation = "Rajpurkar et al., 2018. Know What You Don't Know: Unanswerable Questions for SQuAD."

    def input_features(self):
        return squad_features(no_answer_probability=True)
