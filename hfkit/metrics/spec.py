"""`MetricSpec`: everything hfkit knows about one metric, in one object.

A metric is one file holding a `MetricSpec` (hfkit's own are in `hfkit/metrics/builtin/`; any
module can hold one, named in `eval.metrics` as `module:ATTRIBUTE`). The spec says which score keys
the metric reports, their direction and scale, its options, and how the corpus score comes from
per-example parts (`aggregate`):

- `"mean"`: `per_example` gives each example its score (or a dict of scores, one per key) and the
  corpus score is their mean; None or NaN leaves an example out of that key (squad_v2's HasAns_*);
- `Statistics(score)`: `per_example` gives each example a vector of sufficient statistics and the
  corpus score is `score` of their sum, as sacrebleu scores BLEU, chrF and TER;
- a function: the corpus score is that function of the examples' parts (macro-F1 of the
  (prediction, reference) pairs), and an example's own score is the function of its part alone.

`spec.score(...)` runs the metric once and keeps everything: corpus scores, per-example scores,
details, and what bootstrap intervals and paired tests resample (`hfkit.metrics.bootstrap`): a
resample's score is recomputed from its parts, never averaged from example scores (unless the
metric is a mean). Every function of a spec takes the metric's options as keyword arguments.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

REFERENCE_KINDS = ("text", "squad", "loss")  # what a metric compares: text, SQuAD answer sets, or token losses


@dataclass(frozen=True)
class Statistics:
    """`aggregate=` of a metric scored from summed sufficient statistics (BLEU, chrF, TER).

    `score(sums, **options)`: an (n, k) float64 array of summed statistics -> one score per row, an
    (n,) array (or a dict of them, one per key). `example(stats, **options)`: the per-example scores
    from the (N, k) statistics, when they are not `score` of each row (sentence BLEU's effective order).
    """

    score: Callable[..., Any]
    example: Callable[..., Any] | None = None


@dataclass(frozen=True)
class MetricSpec:
    """One metric. Required: `name` and `per_example(prediction, reference, **options)` (with
    `batched=True`: `per_example(predictions, references, **options)` returning one part per
    example, or a dict of lists). See the module docstring for `aggregate`."""

    name: str
    per_example: Callable[..., Any]
    aggregate: Any = "mean"  # "mean" | Statistics(...) | function(parts, **options) -> score or {key: score}
    higher_is_better: bool = True
    scale: float = 1.0  # 1.0: scores in 0-1; 100.0: in 0-100
    keys: tuple[str, ...] = ()  # the score keys it reports (default: its name)
    batched: bool = False
    references: str = "text"  # text | squad | loss: what it compares, so a task can refuse a metric that cannot score it
    binary: tuple[str, ...] = ()  # keys whose per-example scores are right or wrong: paired by the exact McNemar test
    overview: tuple[str, ...] = ()  # the keys that stand for it in a cross-task overview (default: all)
    options: Mapping[str, Any] | None = None  # option -> default (default: per_example's keyword parameters)
    details: Callable[..., dict] | None = None  # details(parts, references, **options): signature, counts, ...
    unit: str = ""  # how a score reads, when more than its scale ("F-measure, 0-1")
    description: str = ""

    def __post_init__(self):
        problem = _problem(self)
        if problem:
            raise ValueError(f"MetricSpec {self.name!r}: {problem}")
        object.__setattr__(self, "keys", tuple(self.keys) or (self.name,))
        object.__setattr__(self, "binary", tuple(self.binary))
        object.__setattr__(self, "overview", tuple(self.overview) or self.keys)

    @property
    def lower_is_better(self) -> bool:
        return not self.higher_is_better

    def unit_text(self) -> str:
        return self.unit or ("0-100" if self.scale == 100 else "0-1")

    def option_names(self) -> list[str] | None:
        """The options `eval.metric_args` may give it; None: any (per_example takes **options)."""
        if self.options is not None:
            return list(self.options)
        parameters = list(inspect.signature(self.per_example).parameters.values())[2:]
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            return None
        return [p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def score(self, predictions, references, options: Mapping[str, Any] | None = None) -> Scored:
        """Run the metric once on these examples: corpus scores, per-example scores, details and
        what a bootstrap resamples."""
        predictions, references = list(predictions), list(references)
        check_inputs(self.name, predictions, references)
        options = dict(options or {})
        if self.batched:
            parts = self.per_example(predictions, references, **options)
        else:
            parts = [self.per_example(p, r, **options) for p, r in zip(predictions, references)]
        if isinstance(self.aggregate, Statistics):
            scored = _summed(self, parts, options)
        elif self.aggregate == "mean":
            scored = _averaged(self, parts)
        else:
            scored = _custom(self, parts, options)
        if self.details is not None:
            scored.details = dict(self.details(parts, references, **options))
        return scored

    def compute(self, predictions, references, **options) -> dict[str, Any]:
        """Corpus scores and details in one dict, as an `evaluate` module returns them."""
        scored = self.score(predictions, references, options)
        return {**scored.scores, **scored.details}


@dataclass
class Scored:
    """One run of a metric. Resampling (hfkit.metrics.bootstrap): with `columns`, a resample's
    scores are `rescore(column sums over the resample)`; otherwise `rescore(the resample's parts)`."""

    spec: MetricSpec
    scores: dict[str, float]  # key -> corpus score
    examples: dict[str, list[float]]  # key -> one score per example (NaN: not in that key's subset)
    rescore: Callable[[Any], dict[str, Any]]
    columns: np.ndarray | None = None  # (N, k): per-example columns whose sums give the score
    parts: list | None = None  # a custom aggregate's per-example parts
    details: dict[str, Any] = field(default_factory=dict)


def check_inputs(name: str, predictions: list, references: list) -> None:
    """One prediction per reference, at least one."""
    if len(predictions) != len(references):  # as `evaluate` requires, SQuAD's included
        raise ValueError(f"{name}: {len(predictions)} predictions but {len(references)} references")
    if not references:
        raise ValueError(f"{name}: no examples to score")


def _problem(spec: MetricSpec) -> str:
    if not isinstance(spec.name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.+-]*", spec.name):
        return "name must start with a letter and hold letters, digits, _ . + - only"
    if not callable(spec.per_example):
        return "per_example must be a function"
    if not (isinstance(spec.aggregate, Statistics) or callable(spec.aggregate) or spec.aggregate == "mean"):
        return f"aggregate must be 'mean', Statistics(score) or a function, not {spec.aggregate!r}"
    if spec.scale not in (1, 100):
        return f"scale must be 1.0 (scores in 0-1) or 100.0 (0-100), not {spec.scale!r}"
    if spec.references not in REFERENCE_KINDS:
        return f"references must be one of {', '.join(REFERENCE_KINDS)}, not {spec.references!r}"
    keys = tuple(spec.keys) or (spec.name,)
    stray = [key for key in (*spec.binary, *spec.overview) if key not in keys]
    if stray:
        return f"binary and overview name keys it does not report: {', '.join(stray)}"
    return ""


def _by_key(spec: MetricSpec, value) -> dict[str, Any]:
    """A score, or scores per key, as {key: value}."""
    return dict(value) if isinstance(value, Mapping) else {spec.keys[0]: value}


def _table(spec: MetricSpec, parts) -> dict[str, list]:
    """Per-example parts (one number or dict per example, or a dict of lists) as {key: list}."""
    if isinstance(parts, Mapping):
        return {key: list(values) for key, values in parts.items()}
    parts = list(parts)
    if parts and isinstance(parts[0], Mapping):
        keys = dict.fromkeys(key for part in parts for key in part)
        return {key: [part.get(key) for part in parts] for key in keys}
    return {spec.keys[0]: parts}


def _averaged(spec: MetricSpec, parts) -> Scored:
    table = _table(spec, parts)
    examples: dict[str, list[float]] = {}
    scores: dict[str, float] = {}
    columns = []
    for key in spec.keys:
        if key not in table:
            continue
        values = [math.nan if v is None else float(v) for v in table[key]]
        kept = [v for v in values if v == v]
        if not kept:
            continue  # no example is in this key's subset
        examples[key] = values
        scores[key] = sum(kept) / len(kept)  # Python's sum over the examples, as the reference scripts
        array = np.asarray(values, dtype=np.float64)
        valid = ~np.isnan(array)
        columns += [np.where(valid, array, 0.0), valid.astype(np.float64)]
    keys = list(scores)

    def rescore(sums: np.ndarray) -> dict[str, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return {key: np.where(sums[:, 2 * i + 1] > 0, sums[:, 2 * i] / sums[:, 2 * i + 1], np.nan)
                    for i, key in enumerate(keys)}

    return Scored(spec, scores, examples, rescore, np.column_stack(columns) if columns else np.zeros((0, 0)))


def _summed(spec: MetricSpec, parts, options: dict) -> Scored:
    stats = np.asarray(parts, dtype=np.float64)
    if stats.ndim != 2 or len(stats) == 0:
        raise ValueError(f"{spec.name}: per_example must give one vector of statistics per example")
    total = np.zeros(stats.shape[1])
    for row in stats:  # summed in order, as sacrebleu's sum_of_lists: the corpus score is sacrebleu's to the bit
        total += row

    def rescore(sums: np.ndarray) -> dict[str, np.ndarray]:
        return {key: np.asarray(values, dtype=np.float64) for key, values in
                _by_key(spec, spec.aggregate.score(sums, **options)).items()}

    scores = {key: float(values[0]) for key, values in rescore(total[None, :]).items()}
    example = spec.aggregate.example or spec.aggregate.score
    examples = {key: np.asarray(values, dtype=np.float64).tolist()
                for key, values in _by_key(spec, example(stats, **options)).items()}
    return Scored(spec, scores, examples, rescore, stats)


def _custom(spec: MetricSpec, parts, options: dict) -> Scored:
    parts = list(parts)

    def rescore(chosen: list) -> dict[str, float]:
        return {key: float(value) for key, value in _by_key(spec, spec.aggregate(chosen, **options)).items()}

    scores = rescore(parts)
    singles = [rescore([part]) for part in parts]  # an example's own score: the metric of that example alone
    examples = {key: [single.get(key, math.nan) for single in singles] for key in scores}
    return Scored(spec, scores, examples, rescore, parts=parts)
