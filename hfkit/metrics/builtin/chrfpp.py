"""chrF++ (0-100): chrF with word bigrams (word_order=2), as `sacrebleu.corpus_chrf(..., word_order=2)`."""

from hfkit.metrics.builtin.chrf import spec

METRIC = spec("chrfpp", word_order=2)
