"""A `MetricSpec` as an `evaluate` module, for code that calls `evaluate`'s `compute`.

hfkit's metric folders (`hfkit/metrics/<name>/<name>.py`, what `evaluate.load(folder)` reads) are
subclasses of `SpecMetric`, and `hfkit.metrics.load` wraps a plug-in spec with `module_for`, so every
module computes through its spec: the numbers `evaluate` users get are those hfkit records.
"""

from __future__ import annotations

import evaluate

from hfkit.metrics.spec import MetricSpec


class SpecMetric(evaluate.Metric):
    spec: MetricSpec
    renamed: dict[str, str] = {}  # a score key -> the Hub module's name for it (sacrebleu -> score)
    citation = ""

    def _info(self):
        return evaluate.MetricInfo(description=self.spec.description, citation=self.citation,
                                   inputs_description=self.__doc__ or "", features=self.input_features())

    def input_features(self):
        from hfkit.metrics.references import text_features
        from hfkit.metrics.squad_answers import squad_features

        return squad_features(no_answer_probability=False) if self.spec.references == "squad" else text_features()

    def _compute(self, predictions, references, **options):
        output = self.spec.compute(predictions, references, **options)
        return {self.renamed.get(key, key): value for key, value in output.items()}


def module_for(spec: MetricSpec) -> SpecMetric:
    """An `evaluate` module computing `spec`."""
    return type(f"{spec.name}_module", (SpecMetric,), {"spec": spec})()
