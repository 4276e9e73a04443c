"""chrF (0-100) through sacrebleu, the Hub `chrf` module's options and scale; word_order=2 is chrF++.

The corpus score comes from the sum of sacrebleu's sentence statistics, as `corpus_chrf`; each
example's own score is `sentence_chrf`'s.
"""

from hfkit.metrics import from_stats, options
from hfkit.metrics.spec import MetricSpec, Statistics


def spec(name: str, **defaults) -> MetricSpec:
    """chrF under `name`, with some options' defaults changed (chrfpp: word_order 2)."""

    def statistics(predictions, references, **settings):
        return from_stats.sentence_stats(options.chrf(**{**defaults, **settings}), predictions, references)

    def score(stats, **settings):
        return from_stats.chrf_scores(stats, options.chrf(**{**defaults, **settings}))

    def details(stats, references, **settings):
        chrf = options.chrf(**{**defaults, **settings})
        return {"char_order": chrf.char_order, "word_order": chrf.word_order, "beta": chrf.beta,
                "signature": from_stats.signature(chrf, references)}

    return MetricSpec(name=name, per_example=statistics, batched=True, aggregate=Statistics(score),
                      options={**options.defaults(options.chrf), **defaults}, scale=100.0, details=details,
                      description="Corpus chrF as sacrebleu.corpus_chrf computes it (word_order=2: chrF++).")


METRIC = spec("chrf")
