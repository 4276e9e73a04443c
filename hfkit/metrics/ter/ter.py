"""Translation Edit Rate through sacrebleu, with the keys and 0-100 scale of the Hub's `ter` module;
computed by hfkit's `ter` spec (hfkit/metrics/builtin/ter.py)."""

from hfkit.metrics.builtin.ter import METRIC
from hfkit.metrics import module


class Ter(module.SpecMetric):
    """
    Args:
        predictions: list of hypotheses.
        references: list of references per prediction (a string, or a list with the same count for every prediction).
        normalized, ignore_punct, support_zh_ja_chars, case_sensitive: as in sacrebleu.
    Returns:
        score, num_edits, ref_length, signature.
    """

    spec = METRIC
    renamed = {"ter": "score"}
    citation = "Snover et al., 2006. A Study of Translation Edit Rate with Targeted Human Annotation."
