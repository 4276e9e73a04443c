"""Metrics that work offline: `evaluate` modules shipped inside hfkit.

`evaluate.load("sacrebleu")` fetches its script from the Hub at run time; `evaluate.load(<folder>)`
does not. So each metric here is a folder `<name>/<name>.py` holding an `evaluate.Metric` with the
same inputs, keys and scales as the Hub module of that name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfkit.errors import HfkitError

_HERE = Path(__file__).parent


def names() -> list[str]:
    return sorted(d.name for d in _HERE.iterdir() if (d / f"{d.name}.py").is_file())


def load(name: str):
    """The `evaluate` module for `name`, loaded from hfkit's own folder (no network)."""
    import evaluate

    if name not in names():
        raise HfkitError(f"unknown metric {name!r}; hfkit has: {', '.join(names())}")
    return evaluate.load(str(_HERE / name))


def compute(metric_names: list[str], predictions: list, references: list) -> dict[str, Any]:
    """Run each metric and merge the results into one flat dict."""
    results: dict[str, Any] = {}
    for name in metric_names:
        for key, value in load(name).compute(predictions=predictions, references=references).items():
            results[key if key.startswith(name) else f"{name}_{key}"] = value
    return results
