"""BLEU (0-100) through sacrebleu, the Hub `sacrebleu` module's options and scale.

Corpus BLEU is scored from the sum of sacrebleu's sentence statistics, as `corpus_bleu` does (equal
to the bit); each example's own score is sentence BLEU, as `sacrebleu.sentence_bleu`: the options'
tokenizer, lower-casing and smoothing (default `exp`, the NIST "method 3"), with effective order
always on (orders the sentence is too short for are left out), whatever the corpus setting.
"""

from hfkit.metrics import from_stats, options
from hfkit.metrics.spec import MetricSpec, Statistics


def statistics(predictions, references, **settings):
    return from_stats.sentence_stats(options.bleu(**settings), predictions, references)


def corpus(sums, **settings):
    return from_stats.bleu_scores(sums, options.bleu(**settings))


def sentence(stats, **settings):
    return from_stats.bleu_scores(stats, options.bleu(**{**settings, "use_effective_order": True}))


def details(stats, references, **settings):
    bleu = options.bleu(**settings)
    score = bleu._aggregate_and_compute(stats)
    return {"counts": score.counts, "totals": score.totals, "precisions": score.precisions, "bp": score.bp,
            "sys_len": score.sys_len, "ref_len": score.ref_len, "signature": from_stats.signature(bleu, references)}


METRIC = MetricSpec(
    name="sacrebleu", per_example=statistics, batched=True, aggregate=Statistics(corpus, example=sentence),
    options=options.defaults(options.bleu), scale=100.0, details=details,
    description="Corpus BLEU as sacrebleu.corpus_bleu computes it; `signature` says how (tokenizer, smoothing, version).")
