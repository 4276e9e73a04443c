"""ROUGE through rouge_score: each value is the mean of the per-example F-measures (0-1), as the Hub's
`rouge` module but deterministic; computed by hfkit's `rouge` spec (hfkit/metrics/builtin/rouge.py,
where its two extra options, `tokenizer` and `split_sentences`, are explained)."""

from hfkit.metrics.builtin.rouge import METRIC
from hfkit.metrics import module


class Rouge(module.SpecMetric):
    """
    Args:
        predictions: list of summaries.
        references: list of references; each a string or a list of strings (the best-matching one counts).
        rouge_types: default ["rouge1", "rouge2", "rougeL", "rougeLsum"].
        use_stemmer: Porter stemming (default True; default tokenizer only).
        tokenizer: "default" (rouge_score's: lower-case, [a-z0-9] only), "whitespace" or "char" (for CJK).
        split_sentences: one sentence per line before rougeLsum (default True); text with newlines is kept.
        use_aggregator: True (default) returns means; False returns the per-example F-measures.
    Returns:
        one value per ROUGE type.
    """

    spec = METRIC
    citation = "Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries."

    def _compute(self, predictions, references, use_aggregator=True, **options):
        if use_aggregator:
            return super()._compute(predictions, references, **options)
        return METRIC.score(predictions, references, options).examples
