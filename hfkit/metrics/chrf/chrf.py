"""chrF / chrF++ through sacrebleu, with the keys and 0-100 scale of the Hub's `chrf` module."""

import evaluate
import sacrebleu

from hfkit.metrics import options
from hfkit.metrics.references import reference_streams, text_features

_DESCRIPTION = "Corpus chrF as computed by sacrebleu.corpus_chrf (word_order=2 gives chrF++)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypotheses.
    references: list of references per prediction (a string, or a list with the same count for every prediction).
    char_order (6), word_order (0), beta (2), lowercase, whitespace, eps_smoothing: as in sacrebleu.
Returns:
    score, char_order, word_order, beta, signature.
"""



class Chrf(evaluate.Metric):
    headline_keys = ("score",)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Popovic, 2015. chrF: character n-gram F-score for automatic MT evaluation.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=text_features(),
        )

    def _compute(self, predictions, references, char_order=sacrebleu.CHRF.CHAR_ORDER,
                 word_order=sacrebleu.CHRF.WORD_ORDER, beta=sacrebleu.CHRF.BETA, lowercase=False,
                 whitespace=False, eps_smoothing=False):
        chrf = options.chrf(char_order=char_order, word_order=word_order, beta=beta, lowercase=lowercase,
                            whitespace=whitespace, eps_smoothing=eps_smoothing)
        output = chrf.corpus_score(list(predictions), reference_streams(list(references)))
        return {"score": output.score, "char_order": output.char_order, "word_order": output.word_order,
                "beta": output.beta, "signature": str(chrf.get_signature())}
