"""Which metric a name in `eval.metrics` means, and what is known of a score key.

A name is one of hfkit's own metrics (`hfkit/metrics/builtin/<name>.py`), `module:ATTRIBUTE`
naming a `MetricSpec` in any importable module (a file on PYTHONPATH, a package), the name of an
installed package's `hfkit.metrics` entry point, or a Hub metric id (`org/name`: an `evaluate`
script, no spec, so no per-example scores, intervals or paired tests).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from hfkit.errors import HfkitError, first_line, suggest_value
from hfkit.metrics.spec import MetricSpec

ENTRY_POINT_GROUP = "hfkit.metrics"
_BUILTIN = "hfkit.metrics.builtin"
_loaded: dict[str, MetricSpec] = {}


@lru_cache(maxsize=1)
def builtin_names() -> tuple[str, ...]:
    from hfkit.metrics import builtin

    found = sorted(m.name for m in pkgutil.iter_modules(builtin.__path__) if not m.name.startswith("_"))
    return tuple(sorted(found, key=lambda name: builtin.LISTED_FIRST.index(name) if name in builtin.LISTED_FIRST
                        else len(builtin.LISTED_FIRST)))


@lru_cache(maxsize=1)
def _entry_points() -> dict:
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """The metrics `eval.metrics` can name without a module path: hfkit's own (not perplexity, which
    every generating task reports from its loss) and installed plug-ins."""
    own = [name for name in builtin_names() if get(name).references != "loss"]
    return own + sorted(name for name in _entry_points() if name not in own)


def is_hub(name: str) -> bool:
    return "/" in name and ":" not in name


def get(name: str) -> MetricSpec:
    """The spec `name` names; an unknown name, a module that does not import or an attribute that
    is no MetricSpec is an HfkitError that says which."""
    if name in _loaded:
        return _loaded[name]
    if ":" in name:
        spec = _from_module(name)
    elif name in builtin_names():
        spec = importlib.import_module(f"{_BUILTIN}.{name}").METRIC
    elif name in _entry_points():
        try:
            spec = _entry_points()[name].load()
        except Exception as err:  # whatever the plug-in's import raises
            raise HfkitError(f"metric {name!r}: its entry point does not load ({type(err).__name__}: "
                             f"{first_line(err)})") from None
    else:
        own = [n for n in builtin_names() if n != "perplexity"]
        raise HfkitError(f"unknown metric {name!r}{suggest_value(name, own)} (or module:ATTRIBUTE naming a "
                         "MetricSpec, or a Hub metric id like 'org/name')")
    if not isinstance(spec, MetricSpec):
        raise HfkitError(f"metric {name!r} is a {type(spec).__name__}, not an hfkit.metrics.MetricSpec")
    _loaded[name] = spec
    return spec


def find(name: str) -> MetricSpec | None:
    """The spec of `name`, or None for a Hub metric or one that cannot be loaded here."""
    if is_hub(name):
        return None
    try:
        return get(name)
    except HfkitError:
        return None


def _from_module(name: str) -> MetricSpec:
    module_name, _, attribute = name.partition(":")
    if not module_name or not attribute:
        raise HfkitError(f"metric {name!r}: write module:ATTRIBUTE, e.g. my_metrics:METRIC")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.split(".")[0] == err.name.split(".")[0]:
            raise HfkitError(f"metric {name!r}: no module named {module_name!r}; put its folder on PYTHONPATH or "
                             "install its package") from None
        raise HfkitError(f"metric {name!r}: importing {module_name!r} failed (ModuleNotFoundError: "
                         f"{first_line(err)})") from None
    except Exception as err:  # whatever the plug-in's own code raises while importing
        raise HfkitError(f"metric {name!r}: importing {module_name!r} failed ({type(err).__name__}: "
                         f"{first_line(err)})") from None
    if not hasattr(module, attribute):
        raise HfkitError(f"metric {name!r}: module {module_name!r} has no attribute {attribute!r}")
    return getattr(module, attribute)


def spec_for_key(key: str, metric_names=()) -> MetricSpec | None:
    """The metric that reports score `key` (eval_ prefix allowed): among `metric_names` first (a
    run's own: squad's exact_match is 0-100, exact_match's 0-1), then hfkit's own metrics, then
    plug-ins loaded so far."""
    key = key.removeprefix("eval_")
    candidates = [find(name) for name in metric_names or ()]
    candidates += [get(name) for name in builtin_names()] + list(_loaded.values())
    return next((spec for spec in candidates if spec is not None and key in spec.keys), None)


def lower_is_better(key: str, metric_names=()) -> bool:
    """Losses, perplexity and TER improve downwards; every score as its metric's spec says."""
    if key.removeprefix("eval_").endswith("loss"):
        return True
    spec = spec_for_key(key, metric_names)
    return spec is not None and spec.lower_is_better


def headline_names(name: str) -> list[str]:
    """The score keys metric `name` reports (rouge -> rouge1, rouge2, ...; sacrebleu -> sacrebleu)."""
    return [name.split("/")[-1]] if is_hub(name) else list(get(name).keys)
