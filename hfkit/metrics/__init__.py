"""hfkit's metrics: one `MetricSpec` per metric (hfkit.metrics.spec), found by name
(hfkit.metrics.registry) and run once for corpus scores, per-example scores and intervals.

hfkit's own metrics are also `evaluate` modules (`hfkit/metrics/<name>/<name>.py`, loaded offline
from their folders) that compute through their specs, so `load(name)` gives your own code the very
numbers hfkit records; a plug-in spec is wrapped the same way. A name with a slash ("org/metric")
is a Hub metric, loaded with `evaluate.load` when online.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit.errors import HfkitError, first_line, suggest
from hfkit.metrics.registry import (builtin_names, find, get, headline_names, is_hub, lower_is_better, names,
                                    spec_for_key)
from hfkit.metrics.spec import MetricSpec, Scored, Statistics

__all__ = ["MetricSpec", "Scored", "Statistics", "compute", "find", "get", "headline_names", "is_hub", "load",
           "lower_is_better", "names", "score", "spec_for_key", "uncertainty"]

_HERE = Path(__file__).parent


def is_known(name: str) -> bool:
    """A name `get` may resolve (a module:ATTRIBUTE is only known once imported) or a Hub id."""
    return name in names() or is_hub(name) or ":" in name


def load(name: str):
    """The `evaluate` module for `name`: hfkit's own (no network), a plug-in's spec wrapped, or a
    Hub metric id when online."""
    import evaluate

    if not is_hub(name):
        spec = get(name)
        if (_HERE / name / f"{name}.py").is_file():
            return evaluate.load(str(_HERE / name))
        from hfkit.metrics.module import module_for

        return module_for(spec)
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HfkitError(f"metric {name!r} comes from the Hub and HF_HUB_OFFLINE=1; use one of hfkit's "
                         f"({', '.join(names())}) or run online once")
    try:
        return evaluate.load(name)
    except Exception as err:  # evaluate raises FileNotFoundError, ConnectionError, ...
        raise HfkitError(f"cannot load Hub metric {name!r}: {first_line(err)}") from None


@dataclass
class Results:
    """Every metric of a recipe, run once on the same predictions."""

    scores: dict[str, Any] = field(default_factory=dict)  # headline numbers, by key
    details: dict[str, Any] = field(default_factory=dict)  # signatures, settings, counts: "<metric>_<key>"
    examples: dict[str, list] = field(default_factory=dict)  # key -> one score per example
    intervals: dict[str, list[float]] = field(default_factory=dict)  # key -> [low, high] (bootstrap)


def score(metric_names: list[str], predictions: list, references: list,
          metric_args: dict[str, dict[str, Any]] | None = None, resamples: int = 0) -> Results:
    """Run each metric once: its scores, details, per-example scores and, with `resamples`,
    bootstrap intervals from the same per-example parts (a Hub metric has neither of the last two)."""
    from hfkit.metrics.bootstrap import intervals

    results = Results()
    for name in metric_names:
        args = (metric_args or {}).get(name)
        if is_hub(name):
            _hub_scores(name, predictions, references, args, results)
            continue
        scored = get(name).score(predictions, references, args)
        results.scores.update(scored.scores)
        results.details.update({f"{scored.spec.name}_{key}": value for key, value in scored.details.items()})
        results.examples.update(scored.examples)
        if resamples:
            results.intervals.update({key: [low, high] for key, (low, high) in intervals(scored, resamples).items()})
    return results


def _hub_scores(name: str, predictions: list, references: list, args: dict | None, results: Results) -> None:
    """A Hub module's numbers are its scores (`score` takes the metric's name), the rest details."""
    short = name.split("/")[-1]
    output = load(name).compute(predictions=predictions, references=references, **(args or {}))
    for key, value in output.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            results.scores[short if key == "score" else key] = value
        else:
            results.details[f"{short}_{key}"] = value


def compute(metric_names: list[str], predictions: list, references: list,
            metric_args: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """(scores, details) of each metric (see `score`)."""
    results = score(metric_names, predictions, references, metric_args)
    return results.scores, results.details


def uncertainty(metric_names: list[str], predictions: list, references: list, metric_args: dict | None,
                resamples: int) -> tuple[dict[str, list], dict[str, list[float]]]:
    """(per-example scores, bootstrap intervals) of each metric (see `score`)."""
    results = score(metric_names, predictions, references, metric_args, resamples)
    return results.examples, results.intervals


# One example per kind of reference: what validation scores a metric on before any model loads.
_PROBES = {"text": (["a b c."], ["a b c."]),
           "squad": ([{"id": "q", "prediction_text": "a b", "no_answer_probability": 0.0}],
                     [{"id": "q", "answers": {"text": ["a b"], "answer_start": [0]}}])}


def problems(name: str, args: dict | None) -> list[str]:
    """What is wrong with metric `name` (a name in eval.metrics) and its eval.metric_args, one line
    each: a name that resolves to no spec, an option it does not have, or options (or a plug-in)
    that fail on a one-example input. A Hub metric is not checked (its script runs at scoring)."""
    if is_hub(name):
        return []
    try:
        spec = get(name)
    except HfkitError as err:
        return [f"eval.metrics: {err}"]
    accepted = spec.option_names()
    unknown = [key for key in args or {} if accepted is not None and key not in accepted]
    if unknown:
        return [f"eval.metric_args.{name}.{key}: {name} has no option {key!r}{suggest(key, accepted)}"
                if accepted else f"eval.metric_args.{name}: {name} takes no options" for key in unknown]
    probe = _PROBES.get(spec.references)
    if probe is None or not (args or name not in builtin_names()):  # hfkit's own metrics are tested; their options are not
        return []
    try:
        spec.score(*probe, args)
    except Exception as err:  # sacrebleu raises KeyError for a tokenizer, rouge ValueError, re.error, TypeError...
        if not args:
            return [f"eval.metrics: {name} fails on a one-example input ({type(err).__name__}: {first_line(err)})"]
        shown = ", ".join(f"{key}: {value!r}" for key, value in args.items())
        return [f"eval.metric_args.{name}: {name} refuses {{{shown}}} ({type(err).__name__}: {first_line(err)})"]
    return []


LOSS_KEYS = ("eval_loss", "eval_span_loss")  # a token loss, or extractive QA's loss over windows


def eval_loss_key(entries: list[dict]) -> str:
    """Which evaluation loss a log (Trainer's log_history) holds: eval_loss, or eval_span_loss."""
    return next((key for key in LOSS_KEYS if any(key in entry for entry in entries)), "eval_loss")
