"""ROUGE (0-1) through rouge_score: each key is the mean of the per-example F-measures.

Same keys and scale as the Hub's `rouge` module, but deterministic (its default aggregation
resamples; a plain mean does not), stemming on by default as in transformers' summarization
example, and two more options (hfkit.metrics.options.rouge_f_measures): `tokenizer` (`whitespace`
or `char` for scripts rouge_score's default tokenizer erases) and `split_sentences` (one sentence
per line before rougeLsum, by a small regex instead of nltk's punkt).
"""

from hfkit.metrics.options import rouge_f_measures
from hfkit.metrics.spec import MetricSpec

KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")

METRIC = MetricSpec(
    name="rouge", per_example=rouge_f_measures, batched=True, keys=KEYS, overview=("rougeL",),
    unit="F-measure, 0-1", description="ROUGE F-measures (mean over examples) from Google's rouge_score.")
