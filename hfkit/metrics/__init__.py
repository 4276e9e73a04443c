"""Metrics that work offline: `evaluate` modules shipped inside hfkit.

`evaluate.load("sacrebleu")` fetches its script from the Hub at run time; `evaluate.load(<folder>)`
does not. So each metric here is a folder `<name>/<name>.py` holding an `evaluate.Metric` with the
same inputs, keys and scales as the Hub module of that name. A name with a slash ("org/metric")
is a Hub metric, loaded with `evaluate.load` when online.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfkit.errors import HfkitError, first_line

_HERE = Path(__file__).parent


def names() -> list[str]:
    """hfkit's own metrics."""
    return sorted(d.name for d in _HERE.iterdir() if (d / f"{d.name}.py").is_file())


def is_known(name: str) -> bool:
    return name in names() or "/" in name


def load(name: str):
    """The `evaluate` module for `name`: hfkit's own (no network), or a Hub metric id when online."""
    import evaluate

    if name in names():
        return evaluate.load(str(_HERE / name))
    if "/" not in name:
        raise HfkitError(f"unknown metric {name!r}; hfkit has: {', '.join(names())} (or give a Hub id 'org/name')")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise HfkitError(f"metric {name!r} comes from the Hub and HF_HUB_OFFLINE=1; use one of hfkit's "
                         f"({', '.join(names())}) or run online once")
    try:
        return evaluate.load(name)
    except Exception as err:  # evaluate raises FileNotFoundError, ConnectionError, ...
        raise HfkitError(f"cannot load Hub metric {name!r}: {first_line(err)}") from None


def compute(metric_names: list[str], predictions: list, references: list,
            metric_args: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Run each metric; return (scores, details).

    Scores are the headline numbers: those a module lists in `headline_keys` (hfkit's own) or
    all its numbers (a Hub module); a key named `score` takes the metric's name (sacrebleu, chrf,
    ter). The rest (brevity penalty, settings, the sacrebleu signature) goes to details, prefixed.
    """
    scores: dict[str, float] = {}
    details: dict[str, Any] = {}
    for name in metric_names:
        short = name.split("/")[-1]
        module = load(name)
        output = module.compute(predictions=predictions, references=references, **(metric_args or {}).get(name, {}))
        headline = getattr(module, "headline_keys", None)
        for key, value in output.items():
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if is_number and (key in headline if headline is not None else True):
                scores[short if key == "score" else key] = value
            else:
                details[f"{short}_{key}"] = value
    return scores, details


def headline_names(name: str) -> list[str]:
    """The score keys metric `name` reports (rouge -> rouge1, rouge2, ...; sacrebleu -> sacrebleu)."""
    module = load(name)
    short = name.split("/")[-1]
    keys = getattr(module, "headline_keys", None) or [short]
    return [short if key == "score" else key for key in keys]


def lower_is_better(key: str) -> bool:
    """Loss, perplexity and TER improve downwards; every other score upwards."""
    key = key.removeprefix("eval_")
    return key.endswith("loss") or key in ("perplexity", "ter")


def uncertainty(metric_names: list[str], predictions: list, references: list, metric_args: dict | None,
                resamples: int) -> tuple[dict[str, list], dict[str, list[float]]]:
    """Per-example scores ({key: one value per example}) and bootstrap intervals ({key: [low, high]})
    of hfkit's own metrics (a Hub metric has neither); `resamples` 0 leaves the intervals out."""
    from hfkit.metrics.bootstrap import confidence_intervals
    from hfkit.metrics.per_example import example_scores

    per_example: dict[str, list] = {}
    intervals: dict[str, list[float]] = {}
    for name in metric_names:
        if name not in names():
            continue
        args = (metric_args or {}).get(name)
        per_example.update(example_scores(name, predictions, references, args))
        if resamples:
            intervals.update({key: [low, high] for key, (low, high) in
                              confidence_intervals(name, predictions, references, args, n=resamples).items()})
    return per_example, intervals
