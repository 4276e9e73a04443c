"""BLEU through sacrebleu, with the keys and 0-100 scale of the Hub's `sacrebleu` module plus the signature."""

import evaluate

from hfkit.metrics import options
from hfkit.metrics.references import reference_streams, text_features

_DESCRIPTION = "Corpus BLEU as computed by sacrebleu.corpus_bleu; `signature` says how (tokenizer, smoothing, version)."
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of detokenized hypotheses.
    references: list of references per prediction (a string, or a list with the same count for every prediction).
    smooth_method: 'exp' (default), 'floor', 'add-k' or 'none'.
    smooth_value: for 'floor' and 'add-k'.
    tokenize: '13a' (default), 'intl', 'zh', 'char', 'none', ...
    lowercase, force, use_effective_order: as in sacrebleu.
Returns:
    score, counts, totals, precisions, bp, sys_len, ref_len, signature.
"""



class Sacrebleu(evaluate.Metric):
    headline_keys = ("score",)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="Post, 2018. A Call for Clarity in Reporting BLEU Scores.",
            inputs_description=_KWARGS_DESCRIPTION,
            features=text_features(),
        )

    def _compute(self, predictions, references, smooth_method="exp", smooth_value=None, force=False,
                 lowercase=False, tokenize=None, use_effective_order=False):
        bleu = options.bleu(smooth_method=smooth_method, smooth_value=smooth_value, force=force, lowercase=lowercase,
                            tokenize=tokenize, use_effective_order=use_effective_order)
        output = bleu.corpus_score(list(predictions), reference_streams(list(references)))
        return {
            "score": output.score,
            "counts": output.counts,
            "totals": output.totals,
            "precisions": output.precisions,
            "bp": output.bp,
            "sys_len": output.sys_len,
            "ref_len": output.ref_len,
            "signature": str(bleu.get_signature()),
        }
