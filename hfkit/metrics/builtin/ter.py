"""Translation Edit Rate (0-100, lower is better) through sacrebleu, the Hub `ter` module's options.

The corpus score is the summed edits over the summed reference lengths, as `corpus_ter`; each
example's own score is `sentence_ter`'s.
"""

from hfkit.metrics import from_stats, options
from hfkit.metrics.spec import MetricSpec, Statistics


def statistics(predictions, references, **settings):
    return from_stats.sentence_stats(options.ter(**settings), predictions, references)


def score(stats, **settings):
    return from_stats.ter_scores(stats)


def details(stats, references, **settings):
    ter = options.ter(**settings)
    result = ter._aggregate_and_compute(stats)
    return {"num_edits": result.num_edits, "ref_length": result.ref_length,
            "signature": from_stats.signature(ter, references)}


METRIC = MetricSpec(
    name="ter", per_example=statistics, batched=True, aggregate=Statistics(score), options=options.defaults(options.ter),
    higher_is_better=False, scale=100.0, details=details,
    description="Corpus TER as sacrebleu.corpus_ter computes it (lower is better).")
