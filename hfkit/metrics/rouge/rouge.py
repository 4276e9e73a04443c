"""ROUGE through rouge_score: each value is the mean of the per-example F-measures (0-1).

Same keys and scale as the Hub's `rouge` module, but deterministic: the Hub module's default
bootstrap aggregation resamples; a plain mean does not. Stemming is on by default, as in
transformers' summarization example.

Two options beyond the Hub module's:
- `tokenizer`: rouge_score's default tokenizer lower-cases and keeps only [a-z0-9], so Chinese,
  Japanese, Thai or Arabic text scores 0. `whitespace` splits on whitespace (lower-cased, all
  scripts kept); `char` makes every non-space character a token (the usual choice for CJK).
  Stemming applies to `default` only.
- `split_sentences` (default true): rougeLsum scores sentence by sentence, and rouge_score finds
  sentences by newlines only. As transformers' example does with nltk, each text is first put one
  sentence per line, here by a small regex (a sentence ends at . ! ? followed by whitespace or the
  end, or at 。！？), so no nltk data is needed. A text that already contains newlines is kept as is.
  This changes rougeLsum (not rouge1/2/L) for multi-sentence text on one line; `false` gives
  rouge_score's plain newline rule.
"""

import evaluate

from hfkit.metrics.options import rouge_f_measures
from hfkit.metrics.references import text_features

_KWARGS_DESCRIPTION = """
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


class Rouge(evaluate.Metric):
    headline_keys = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def _info(self):
        return evaluate.MetricInfo(
            description="ROUGE F-measures (mean over examples) from Google's rouge_score.",
            citation="Lin, 2004. ROUGE: A Package for Automatic Evaluation of Summaries.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=text_features(),
        )

    def _compute(self, predictions, references, rouge_types=None, use_stemmer=True, use_aggregator=True,
                 tokenizer="default", split_sentences=True):
        per_example = rouge_f_measures(predictions, references, rouge_types=rouge_types, use_stemmer=use_stemmer,
                                       tokenizer=tokenizer, split_sentences=split_sentences)
        if not use_aggregator:
            return per_example
        return {key: sum(values) / len(values) if values else 0.0 for key, values in per_example.items()}
