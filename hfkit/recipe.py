"""Reading a recipe: YAML file -> overrides -> paths -> the task's schema -> cross-checks.

`load_recipe(path, overrides)` reads the file with a safe YAML loader (duplicate keys refused),
applies `key=value` overrides from the command line, resolves relative paths and validates
everything with the task's pydantic schema (hfkit.schema plus the task's own options). Every
mistake becomes an `HfkitError` whose message names the file (or the override), the dotted key,
what was expected and the closest valid name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hfkit import metrics, tasks
from hfkit.errors import HfkitError, first_line, suggest, suggest_value
from hfkit.schema import Recipe, fields_at
from hfkit.training_keys import training_key_problems


class RecipeLoader(yaml.SafeLoader):
    """SafeLoader that reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`) and refuses duplicate keys.

    Learning rates are written like that in every recipe, and a string learning rate would only
    fail deep inside the optimizer; a key written twice would silently keep the last value.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (the later value would silently win); keep one",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)

_PATH_KEYS = ("train_file", "validation_file", "test_file")


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = (), require_files: bool = False) -> Recipe:
    """Read, override, resolve and validate a recipe file. `require_files`: a data file that does not
    exist is refused first, before the checks that import transformers and torch (seconds)."""
    raw, overridden = _read(Path(path), overrides)
    recipe = validate_recipe(raw, where=str(path), overridden=overridden, require_files=require_files)
    recipe._path, recipe._overridden = find_recipe(Path(path)), overridden
    return recipe


def find_recipe(path: Path) -> Path:
    """`path`, or the shipped recipe of that name (`hfkit recipes` lists them) when no such file is here."""
    from hfkit.resources import shipped_recipe

    return path if path.exists() else shipped_recipe(path) or path


def check_paths(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> None:
    """The quick part of `load_recipe(require_files=True)`: the recipe file, its YAML, the overrides, the
    schema and the data paths, checked before anything imports torch (the CLI answers in under a second)."""
    raw, overridden = _read(Path(path), overrides)
    _schema_valid(raw, str(path), overridden)
    _check_files_exist(raw)


def check_eval_target(target: Path, overrides: list[str] | tuple[str, ...] = ()) -> None:
    """`hfkit eval`'s target, before torch loads: a run folder (its recipe.yaml) or a recipe file,
    whose data paths exist."""
    from hfkit import runs

    if not target.exists():
        raise HfkitError(f"{target}: no such run folder or recipe file")
    if target.is_dir() and not runs.is_run_dir(target):
        raise HfkitError(f"{target} is a folder but not a run folder (it has no {runs.RECIPE}); give a run folder "
                         "or a recipe file")
    check_paths(target / runs.RECIPE if target.is_dir() else target, overrides)


def _read(path: Path, overrides) -> tuple[dict[str, Any], set[str]]:
    """The recipe file with its paths resolved and the overrides applied, and the keys they changed."""
    path = find_recipe(path)
    raw = read_yaml(path)
    _resolve_paths(raw, base=path.resolve().parent)
    from_file = _flatten(raw)
    apply_overrides(raw, overrides)
    _resolve_paths(raw, base=Path.cwd())  # relative paths given as overrides are relative to the shell
    flat = _flatten(raw)
    return raw, {key for key in flat if key not in from_file or flat[key] != from_file[key]}


def recipe_from_dict(raw: dict[str, Any], where: str = "recipe") -> Recipe:
    """A recipe given as a dict (the Python API); paths are relative to the current directory."""
    raw = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy in plain types
    _resolve_paths(raw, base=Path.cwd())
    return validate_recipe(raw, where=where)


def validate_recipe(raw: dict[str, Any], where: str, overridden: set[str] = frozenset(),
                    require_files: bool = False) -> Recipe:
    """Validate a recipe dict against its task's schema, then (`require_files`) that its data files
    exist, then the checks that need the task (these import transformers and torch)."""
    recipe = _schema_valid(raw, where, overridden)
    if require_files:
        _check_files_exist(raw)
    problems = check(recipe)
    if problems:
        raise HfkitError(_bad_recipe(where, problems, overridden))
    return recipe


def _schema_valid(raw: dict[str, Any], where: str, overridden: set[str] = frozenset()) -> Recipe:
    """The recipe as its task's pydantic schema reads it (quick: nothing heavy is imported)."""
    task = raw.get("task")
    if isinstance(task, str) and task not in tasks.names():  # alone: the task's own sections would look unknown
        raise HfkitError(_bad_recipe(where, [f"task: unknown task {task!r}{suggest_value(task, tasks.names())}"],
                                     overridden))
    schema = tasks.task_class(task).recipe_class if isinstance(task, str) else Recipe
    raw = _without_empty_sections(raw, schema)
    try:
        return schema.model_validate(raw)
    except ValidationError as err:
        raise HfkitError(_bad_recipe(where, _error_lines(err, schema), overridden)) from None


def check(recipe: Recipe) -> list[str]:
    """Checks that need the task: its name, data format, metrics, options and TrainingArguments keys."""
    if recipe.task not in tasks.names():
        return [f"task: unknown task {recipe.task!r}{suggest_value(recipe.task, tasks.names())}"]
    task = tasks.task_class(recipe.task).variant(recipe)(recipe, encoder_decoder=False)  # no check needs the family
    problems = []
    fmt = recipe.data.format
    if fmt is not None and fmt not in task.formats:
        problems.append(f"data.format: {fmt!r} is not a format of task {task.name!r}; "
                        f"expected one of {', '.join(task.formats)}")
    for name in recipe.eval.metrics or []:
        if metrics.is_hub(name) and not recipe.eval.trust_remote_code:
            problems.append(f"eval.metrics: {name!r} is a Hub metric: evaluate.load runs the Python script of its "
                            "repository; read that code, then set eval.trust_remote_code: true to allow it")
    for name in recipe.eval.metric_args:
        if name not in task.metric_names():
            problems.append(f"eval.metric_args: {name!r} is not one of the recipe's metrics")
    for name in task.metric_names():  # imports a plug-in's module and scores a tiny input with it
        problems += metrics.problems(name, recipe.eval.metric_args.get(name))
    problems += _shared_keys(task.metric_names())
    problems += task.problems()
    problems += task.metric_problems()
    problems += _best_metric_problems(recipe, task)
    problems += streaming_problems(recipe)
    from transformers import Seq2SeqTrainingArguments  # a superset of TrainingArguments: the family is not known here

    problems += training_key_problems(recipe.training, Seq2SeqTrainingArguments)
    return problems


def ignored_settings(recipe: Recipe) -> list[str]:
    """Settings the recipe gives that nothing will use: warnings (shown by validate, train and eval), not
    errors. Compared with the defaults, so a resolved recipe.yaml (every key written) warns alike."""
    from hfkit.schema import SAMPLING_KEYS, PeftSection

    notes = []
    generation = recipe.generation
    sampling = [key for key in SAMPLING_KEYS if getattr(generation, key) is not None]
    if sampling and not generation.do_sample:
        notes.append(f"generation.{', '.join(sampling)}: only sampling uses {'them' if len(sampling) > 1 else 'it'}, "
                     "and generation.do_sample is false (greedy or beam search ignores it); set do_sample: true to sample")
    defaults = PeftSection()
    lora = [key for key in ("r", "alpha", "dropout", "target_modules", "use_dora")
            if getattr(recipe.peft, key) != getattr(defaults, key)]
    if lora and recipe.peft.method == "none":
        notes.append(f"peft.{', '.join(lora)}: LoRA settings, ignored with peft.method: none (full fine-tuning)")
    return notes


def _shared_keys(names: list[str]) -> list[str]:
    """Two metrics that report the same score key would overwrite each other's numbers."""
    owner: dict[str, str] = {}
    found = []
    for name in names:
        spec = metrics.find(name)
        for key in spec.keys if spec else []:
            if key in owner:
                found.append(f"eval.metrics: {owner[key]} and {name} both report {key!r}; keep one of them")
            owner.setdefault(key, name)
    return found


def _best_metric_problems(recipe: Recipe, task) -> list[str]:
    """training.metric_for_best_model must name a score the evaluation produces."""
    chosen = recipe.training.get("metric_for_best_model")
    if not isinstance(chosen, str) or any(not metrics.is_hub(n) and metrics.find(n) is None for n in task.metric_names()):
        return []
    valid = [task.loss_key, *(["perplexity"] if task.generates else [])]
    valid += [key for name in task.metric_names() if not metrics.is_hub(name) for key in metrics.headline_names(name)]
    if chosen.removeprefix("eval_") in {v.removeprefix("eval_") for v in valid} or chosen == "loss":
        return []
    return [f"training.metric_for_best_model: {chosen!r} is not a score of this recipe's evaluation"
            f"{suggest_value(chosen, valid)}"]


def streaming_problems(recipe: Recipe) -> list[str]:
    """What a streaming recipe needs (hfkit.streaming): a step count, no near-dedup, no loader workers."""
    if not recipe.data.streaming:
        return []
    found = []
    steps, workers = recipe.training.get("max_steps"), recipe.training.get("dataloader_num_workers")
    if not (isinstance(steps, int) and steps > 0):
        found.append("data.streaming: a stream has no length, so set training.max_steps (e.g. 1000)")
    if recipe.data.clean.near_dedup:
        found.append("data.clean.near_dedup: not available with data.streaming (MinHash compares every example "
                     "with all the others); set it to false")
    if isinstance(workers, int) and workers > 0:
        found.append("training.dataloader_num_workers: data.streaming reads in the training process; set it to 0")
    return found


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> None:
    """Apply `a.b.c=value` overrides in place; values are parsed as YAML (numbers, lists, null)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            hint = ""
            if item.startswith("--"):
                hint = f"; a TrainingArguments flag is written training.{item[2:].replace('-', '_')}=VALUE"
            raise HfkitError(
                f"malformed override {item!r}: expected KEY=VALUE with a dotted key, "
                f"e.g. training.max_steps=100 or eval.metrics=[exact_match]{hint}"
            )
        try:
            value = yaml.load(text, Loader=RecipeLoader) if text.strip() else None
        except yaml.YAMLError as err:
            raise HfkitError(f"override {item!r}: the value is not valid YAML ({_yaml_problem(err)})") from None
        node = raw
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                section = ".".join(parts[: depth + 1])
                raise HfkitError(f"override {item!r}: {section} is a value, not a section")
            node = child
        node[parts[-1]] = value


def read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise HfkitError(f"{path} is a folder, not a recipe file; give a .yaml file inside it "
                         "(hfkit recipes lists the shipped ones)")
    if not path.is_file():
        raise HfkitError(f"recipe file not found: {path} (hfkit recipes lists the recipes that come with hfkit)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise HfkitError(f"{path}: not valid UTF-8 (byte {err.start}); save the recipe as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise HfkitError(f"{where}: YAML syntax error: {_yaml_problem(err)}") from None
    if not isinstance(raw, dict):
        raise HfkitError(f"{path}: a recipe must be a YAML mapping with keys task, model, data, ...")
    return raw


def _yaml_problem(err: yaml.YAMLError) -> str:
    return getattr(err, "problem", None) or first_line(err)


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Make relative data paths (and model folders that exist there) absolute against `base`."""
    data = raw.get("data")
    if isinstance(data, dict):
        for key in _PATH_KEYS:
            value = data.get(key)
            if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
                data[key] = str((base / value).resolve())
    model = raw.get("model")
    if isinstance(model, dict):
        name = model.get("name_or_path")
        if isinstance(name, str) and name and not Path(name).is_absolute() and (base / name).exists():
            model["name_or_path"] = str((base / name).resolve())


def _without_empty_sections(raw: dict[str, Any], schema: type[Recipe]) -> dict[str, Any]:
    """`eval:` with every key commented out reads as null: a section with defaults then takes them,
    as if absent (a required one, like model:, is still reported missing)."""
    empty = [key for key, value in raw.items() if value is None and key in schema.model_fields and
             not schema.model_fields[key].is_required()]
    return {key: value for key, value in raw.items() if key not in empty}


def _check_files_exist(raw: dict[str, Any]) -> None:
    """data.*_file paths that name nothing at all (a link, even a broken one, is left to the data loader)."""
    data = raw.get("data")
    for key in _PATH_KEYS:
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, str) and value and not os.path.lexists(Path(value).expanduser()):
            raise HfkitError(f"data.{key}: file not found: {value}")


def _flatten(raw: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b': value} for every leaf of a nested dict (to tell which keys an override set)."""
    if not isinstance(raw, dict):
        return {prefix: raw}
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _error_lines(err: ValidationError, schema: type[Recipe]) -> list[str]:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key{suggest(e['loc'][-1], fields_at(schema, e['loc'][:-1]))}")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = e.get("input")
            got = f" (got {shown!r})" if isinstance(shown, (str, int, float, bool)) or shown is None else ""
            lines.append(f"{loc}: {msg}{got}")
    return lines


def _bad_recipe(where: str, lines: list[str], overridden: set[str] = frozenset()) -> str:
    """One message for all problems; a problem with a key set on the command line says so."""
    def origin(line: str) -> str:
        key = line.split(":", 1)[0]
        return f"{line} (set on the command line)" if any(key == k or key.startswith(k + ".") or k.startswith(key + ".")
                                                            for k in overridden) else line

    lines = [origin(line) for line in lines]
    if len(lines) == 1:
        return f"{where}: {lines[0]}"
    return f"{where}: {len(lines)} problems:\n" + "\n".join(f"  - {line}" for line in lines)
