"""ROUGE through rouge_score: each value is the mean of the per-example F-measures (0-1).

Same keys and scale as the Hub's `rouge` module, but deterministic: the Hub module's default
bootstrap aggregation resamples; a plain mean does not. `rougeLsum` splits sentences on newlines
(rouge_score's own rule), so no nltk data is needed. Stemming is on by default, as in
transformers' summarization example.
"""

import evaluate
from rouge_score import rouge_scorer

from hfkit.metrics.references import text_features

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of summaries.
    references: list of references; each a string or a list of strings (the best-matching one counts).
    rouge_types: default ["rouge1", "rouge2", "rougeL", "rougeLsum"].
    use_stemmer: Porter stemming (default True).
    use_aggregator: True (default) returns means; False returns the per-example F-measures.
Returns:
    one value per ROUGE type.
"""


class Rouge(evaluate.Metric):
    headline_keys = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE F-measures (mean over examples) from Google's rouge_score.",
            citation="Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=text_features(),
        )

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=True, use_aggregator=True):
        rouge_types = rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"]
        scorer = rouge_scorer.RougeScorer(rouge_types=rouge_types, use_stemmer=use_stemmer)
        per_example = {key: [] for key in rouge_types}
        for reference, prediction in zip(references, predictions):
            if isinstance(reference, list):
                scores = scorer.score_multi(reference, prediction)
            else:
                scores = scorer.score(reference, prediction)
            for key in rouge_types:
                per_example[key].append(scores[key].fmeasure)
        if not use_aggregator:
            return per_example
        return {key: sum(values) / len(values) if values else 0.0 for key, values in per_example.items()}
