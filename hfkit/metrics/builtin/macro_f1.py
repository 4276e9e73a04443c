"""Macro-F1 (0-1) of generated labels: the F1 of each label, averaged with equal weight per label.

For classification by generation (sentiment, topic, intent): each prediction and reference is a
label, compared as written (`ignore_case` lower-cases both). The labels are those that occur as a
reference or a prediction, as scikit-learn's `f1_score(average="macro")` takes them; a label's F1
is 2 TP / (2 TP + FP + FN). It is not a mean of per-example scores: each bootstrap resample
recomputes it from the resampled examples' (prediction, reference) pairs, and a paired test draws
the same examples for both systems. An example's own score is the metric of that example alone:
1 when its label is right, else 0.
"""

from collections import Counter

from hfkit.metrics.spec import MetricSpec


def label_pair(prediction, reference, ignore_case=False) -> tuple[str, str]:
    return (prediction.lower(), reference.lower()) if ignore_case else (prediction, reference)


def macro_f1(pairs, ignore_case=False) -> float:
    true_positive, predicted, expected = Counter(), Counter(), Counter()
    for prediction, reference in pairs:
        predicted[prediction] += 1
        expected[reference] += 1
        true_positive[prediction] += prediction == reference
    labels = predicted.keys() | expected.keys()
    return sum(2 * true_positive[label] / (predicted[label] + expected[label]) for label in labels) / len(labels)


METRIC = MetricSpec(name="macro_f1", per_example=label_pair, aggregate=macro_f1,
                    description="Macro-averaged F1 over the labels that occur as a reference or a prediction.")
