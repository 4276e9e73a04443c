"""What a study is: its recipe, search space, sampler, seeds and objective, read from a study file
(`recipes/studies/*.yaml`) or from `hfkit study RECIPE --grid KEY=V1,V2 ...`, and checked in full
before any trial runs.

`check` catches every mistake cheaply, without loading a model: an unknown key in the search
(with the closest key), a range under `sampler: grid`, an objective the recipe does not report,
and every combination of searched values that the recipe loader refuses (each is loaded with
`hfkit.recipe.load_recipe`, exactly as its trial will be).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from hfkit import metrics, tasks
from hfkit.errors import HfkitError, suggest, suggest_value
from hfkit.recipe import RecipeLoader, load_recipe, read_yaml
from hfkit.schema import Recipe, fields_at
from hfkit.training_keys import CALLBACK_KEYS

DEFAULT_DIR = "studies"
SAMPLERS = ("grid", "random", "tpe")
DEFAULT_TRIALS = 10  # random / tpe: configurations to sample when the study file does not say
MAX_CHECKED = 256  # random / tpe: combinations of the searched values' ends checked one by one up to here


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """`{low, high[, step][, log]}`: a numeric range for random / tpe (integers when low, high and step are)."""

    low: int | float
    high: int | float
    step: int | float | None = Field(None, gt=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and (self.step is not None or self.low <= 0):
            raise ValueError("log: true needs low > 0 and no step")
        return self

    @property
    def integers(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in (self.low, self.high, self.step or 1))

    def ends(self) -> list:
        return [self.low, self.high]


class Pruning(_Strict):
    """Optuna's MedianPruner on the evaluations during training (optuna's defaults)."""

    type: Literal["median"] = "median"
    n_startup_trials: int = Field(5, ge=0)
    n_warmup_steps: int = Field(0, ge=0)
    interval_steps: PositiveInt = 1


class StudyFile(_Strict):
    recipe: str  # relative to the study file
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted key -> value, applied to every trial
    search: dict[str, list | Range]
    sampler: Literal["grid", "random", "tpe"] = "grid"
    trials: PositiveInt | None = None  # random / tpe: configurations to sample
    seeds: PositiveInt | list[int] = 1  # training.seed values per configuration (a count, or the values)
    objective: str | None = None
    pruning: Literal["median"] | Pruning | None = None
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclasses.dataclass
class StudySpec:
    """A study, checked: everything the runner needs."""

    recipe: Path  # the recipe file
    overrides: list[str]  # key=value for every trial
    search: dict[str, list | Range]  # dotted recipe key -> values (a list) or a Range
    sampler: str
    trials: int | None  # random / tpe: configurations
    seeds: list[int]
    objective: str  # a key of the run record's final metrics
    name: str
    dir: Path
    pruning: Pruning | None = None
    storage: str | None = None
    launch_config: str | None = None
    where: str = "search"  # how messages name the search: "--grid", or "FILE: search"
    base: Recipe | None = None  # the recipe with the study's overrides (filled by `check`)

    def at(self, key: str) -> str:
        """How a message names a searched key: `--grid KEY` or `FILE: search.KEY`."""
        return f"--grid {key}" if self.where == "--grid" else f"{self.where}.{key}"

    @property
    def folder(self) -> Path:
        return self.dir / self.name

    @property
    def direction(self) -> str:
        return objective_direction(self.objective)

    def identity(self) -> dict[str, Any]:
        """What must not change between runs of one study (trials and seeds may grow)."""
        return {"recipe": str(self.recipe.resolve()), "overrides": self.overrides, "sampler": self.sampler,
                "search": {k: (v.model_dump() if isinstance(v, Range) else v) for k, v in self.search.items()},
                "objective": self.objective, "pruning": self.pruning.model_dump() if self.pruning else None}


def objective_direction(key: str) -> str:
    """'minimize' or 'maximize': the one place a study learns which way its objective improves."""
    return "minimize" if metrics.lower_is_better(key) else "maximize"


def is_study_file(path: Path) -> bool:
    """A study file has `search:`; a recipe has `task:`."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(raw, dict) and "search" in raw and "task" not in raw


def from_study_file(path: Path, name: str | None = None, dir: str | None = None, seeds: int | None = None,
                    objective: str | None = None, overrides: list[str] = (), **more) -> StudySpec:
    raw = read_yaml(Path(path))
    try:
        study = StudyFile.model_validate(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"] if not str(p).startswith(("list[", "Range")))
        if problem["type"] == "extra_forbidden":
            message = f"unknown key{suggest(problem['loc'][-1], list(StudyFile.model_fields))}"
        else:
            message = problem["msg"].removeprefix("Value error, ")
        raise HfkitError(f"{path}: {where}: {message}") from None
    pruning = Pruning() if study.pruning == "median" else study.pruning
    return StudySpec(
        recipe=Path(os.path.normpath(Path(path).parent / study.recipe)), overrides=[f"{k}={json.dumps(v)}" for k, v in study.overrides.items()]
        + list(overrides), search=study.search, sampler=study.sampler, trials=study.trials,
        seeds=study.seeds if isinstance(study.seeds, list) else seeds_from(seeds or study.seeds),
        objective=objective or study.objective, name=name or study.name or Path(path).stem,
        dir=Path(dir or DEFAULT_DIR), pruning=pruning, where=f"{path}: search", **more)


def from_grid(recipe: Path, grid: list[str], name: str | None = None, dir: str | None = None, seeds: int | None = None,
              objective: str | None = None, overrides: list[str] = (), **more) -> StudySpec:
    """`hfkit study RECIPE --grid KEY=V1,V2 ...`."""
    if not grid:
        raise HfkitError("give the values to try: --grid KEY=V1,V2 (e.g. --grid training.learning_rate=1e-4,1e-3), "
                         "or a study file (recipes/studies/)")
    search: dict[str, list] = {}
    for item in grid:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise HfkitError(f"--grid {item}: expected KEY=V1,V2,... e.g. --grid peft.r=8,16")
        try:
            values = yaml.load(f"[{text}]", Loader=RecipeLoader)  # YAML flow list: numbers, strings, [a, b] lists
        except yaml.YAMLError as err:
            raise HfkitError(f"--grid {item}: the values are not valid YAML ({getattr(err, 'problem', err)})") from None
        if key in search:
            raise HfkitError(f"--grid {key}: given twice; put all its values in one --grid {key}=V1,V2")
        search[key] = values
    return StudySpec(recipe=Path(recipe), overrides=list(overrides), search=search, sampler="grid", trials=None,
                     seeds=seeds_from(seeds), objective=objective, name=name or f"{Path(recipe).stem}-study",
                     dir=Path(dir or DEFAULT_DIR), where="--grid", **more)


def seeds_from(count: int | None) -> list[int] | int:
    """A seed count stays a count until the recipe's own seed is known (`check` turns it into values)."""
    if count is not None and count < 1:
        raise HfkitError(f"--seeds must be 1 or more, not {count}")
    return count or 1


def check(spec: StudySpec) -> StudySpec:
    """Every mistake of the study, as one line, before any trial runs; fills `base`, `seeds`, `objective`."""
    if not spec.search:
        raise HfkitError(f"{spec.where}: nothing to search; name at least one recipe key and its values")
    spec.base = load_recipe(spec.recipe, spec.overrides)
    for key, values in spec.search.items():
        _check_key(spec.base, key, spec.at(key))
        if isinstance(values, Range) and spec.sampler == "grid":
            raise HfkitError(f"{spec.at(key)}: a range ({{low, high}}) needs sampler: random or tpe; "
                             "a grid takes a list of values, e.g. [4, 8, 16]")
        if isinstance(values, list) and (not values or len({json.dumps(v) for v in values}) != len(values)):
            raise HfkitError(f"{spec.at(key)}: give distinct values, at least one (got {values})")
    if isinstance(spec.seeds, int):
        first = spec.base.training.get("seed", 42)  # TrainingArguments' default seed
        spec.seeds = [first + i for i in range(spec.seeds)]
    if spec.sampler != "grid" and spec.trials is None:
        spec.trials = DEFAULT_TRIALS
    spec.objective = _objective(spec)
    if spec.pruning and spec.base.training.get("eval_strategy", "no") not in ("steps", "epoch"):
        raise HfkitError("pruning: median prunes on the evaluations during training; set training.eval_strategy: steps "
                         "and training.eval_steps in the recipe or the study's overrides")
    for combination in combinations_to_check(spec):
        try:
            load_recipe(spec.recipe, [*spec.overrides, *assignments(combination), f"training.seed={spec.seeds[0]}"])
        except HfkitError as err:
            shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in combination.items())
            raise HfkitError(f"{spec.where}: the combination {shown} is not a valid recipe: {err}") from None
    return spec


def _check_key(recipe: Recipe, key: str, shown: str) -> None:
    """A searched key must be a recipe key: schema sections down to a field, or a TrainingArguments field."""
    parts = key.split(".")
    if key == "training.seed":
        raise HfkitError(f"{shown}: the seeds are set with seeds: N (--seeds N), not searched")
    if key in ("output.dir", "output.name", "output.timestamp", "task"):
        raise HfkitError(f"{shown}: the study names each trial's folder (and keeps the recipe's task)")
    if parts[0] == "training" and len(parts) == 2:
        from transformers import Seq2SeqTrainingArguments

        fields = [f.name for f in dataclasses.fields(Seq2SeqTrainingArguments) if f.init] + list(CALLBACK_KEYS)
        if parts[1] not in fields:
            raise HfkitError(f"{shown}: unknown key{suggest(parts[1], fields)}")
        return
    schema = type(recipe)
    for depth, part in enumerate(parts):
        valid = fields_at(schema, tuple(parts[:depth]))
        if not valid:
            return  # a free-form mapping (data.columns, eval.metric_args): the combination check decides
        if part not in valid:
            where_key = ".".join(parts[:depth]) or "(top level)"
            raise HfkitError(f"{shown}: unknown key {part!r} in {where_key}{suggest(part, valid)}")


def reported_scores(recipe: Recipe) -> list[str]:
    """The keys the run record's final metrics will hold for this recipe."""
    task = tasks.task_class(recipe.task).variant(recipe)(recipe, encoder_decoder=False)
    found = [key for name in task.metric_names() if "/" not in name for key in metrics.headline_names(name)]
    return found + ["eval_loss"] + (["perplexity"] if task.generates else [])


def _objective(spec: StudySpec) -> str:
    valid = reported_scores(spec.base)
    chosen = spec.objective or spec.base.training.get("metric_for_best_model") or valid[0]
    if chosen == "loss":
        chosen = "eval_loss"
    if chosen not in valid and chosen.removeprefix("eval_") in valid:
        chosen = chosen.removeprefix("eval_")
    if chosen not in valid:
        raise HfkitError(f"objective: {chosen!r} is not a score this recipe reports{suggest_value(chosen, valid)}")
    return chosen


def configurations(spec: StudySpec) -> list[dict[str, Any]]:
    """A grid's configurations, in order (the first key varies slowest)."""
    keys = list(spec.search)
    return [dict(zip(keys, values)) for values in itertools.product(*(spec.search[k] for k in keys))]


def combinations_to_check(spec: StudySpec) -> list[dict[str, Any]]:
    """Every grid configuration; for random / tpe every mix of the listed values and the ranges' ends
    (each value alone when there are more than MAX_CHECKED)."""
    if spec.sampler == "grid":
        return configurations(spec)
    options = {k: (v.ends() if isinstance(v, Range) else v) for k, v in spec.search.items()}
    total = 1
    for values in options.values():
        total *= len(values)
    if total <= MAX_CHECKED:
        keys = list(options)
        return [dict(zip(keys, values)) for values in itertools.product(*options.values())]
    return [{key: value} for key, values in options.items() for value in values]


def assignments(params: dict[str, Any]) -> list[str]:
    """key=value overrides for a configuration (JSON is valid YAML, so lists and strings survive)."""
    return [f"{key}={json.dumps(value)}" for key, value in params.items()]


def folder_name(params: dict[str, Any], seed: int) -> str:
    """A trial's run folder: readable (`learning_rate-0.001_r-8_seed-42`), a plain name (output.name)."""
    short = {key: key.rsplit(".", 1)[-1] for key in params}
    if len(set(short.values())) < len(short):
        short = {key: key for key in params}
    parts = [f"{short[key]}-{_text(value)}" for key, value in params.items()] + [f"seed-{seed}"]
    name = "_".join(parts)
    if len(name) > 120:
        import hashlib

        name = f"c{hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]}_seed-{seed}"
    return name


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-") or "x"
