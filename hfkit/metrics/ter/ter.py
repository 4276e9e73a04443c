"""Translation Edit Rate through sacrebleu, with the keys and 0-100 scale of the Hub's `ter` module."""

import evaluate

from hfkit.metrics import options
from hfkit.metrics.references import reference_streams, text_features

_DESCRIPTION = "Corpus TER as computed by sacrebleu.corpus_ter (lower is better)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypotheses.
    references: list of references per prediction (a string, or a list with the same count for every prediction).
    normalized, ignore_punct, support_zh_ja_chars, case_sensitive: as in sacrebleu.
Returns:
    score, num_edits, ref_length, signature.
"""



class Ter(evaluate.Metric):
    headline_keys = ("score",)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Snover et al., 2006. A Study of Translation Edit Rate with Targeted Human Annotation.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=text_features(),
        )

    def _compute(self, predictions, references, normalized=False, ignore_punct=False, support_zh_ja_chars=False,
                 case_sensitive=False):
        ter = options.ter(normalized=normalized, ignore_punct=ignore_punct, support_zh_ja_chars=support_zh_ja_chars,
                          case_sensitive=case_sensitive)
        output = ter.corpus_score(list(predictions), reference_streams(list(references)))
        return {"score": output.score, "num_edits": output.num_edits, "ref_length": output.ref_length,
                "signature": str(ter.get_signature())}
