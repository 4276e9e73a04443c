"""Recipe keys that explain themselves: `hfkit explain KEY` and `hfkit schema`, read off the schema.

Every key's type, default, allowed values and description come from the pydantic schema
(hfkit.schema plus the tasks' own sections, e.g. QA's `qa:`), and `training.*` keys from
TrainingArguments' own field help, so there is one source: `hfkit schema` prints the recipe's JSON
Schema (an editor's YAML extension completes and checks recipes with it) and `hfkit schema
--markdown` the key reference in docs/recipe-keys.md.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

from hfkit import tasks
from hfkit.errors import HfkitError, suggest
from hfkit.schema import Recipe
from hfkit.training_keys import CALLBACK_KEYS, TRAINING_RENAMED

SCHEMA_URL = "https://json-schema.org/draft/2020-12/schema"
REQUIRED = "(required)"
CALLBACK_HELP = {
    "early_stopping_patience": "Stop training after this many evaluations without improvement of "
                               "metric_for_best_model (transformers' EarlyStoppingCallback).",
    "early_stopping_threshold": "How much metric_for_best_model must improve to count as an improvement "
                                "(EarlyStoppingCallback; default 0.0).",
}


def recipe_model() -> type[BaseModel]:
    """Every task's recipe in one model: each key with its most specific section (translation's data
    keys, QA's `qa:`), so one schema covers every shipped recipe."""
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    for name in tasks.names():
        for key, info in tasks.task_class(name).recipe_class.model_fields.items():
            current = fields.get(key)
            if current is None or _narrower(info.annotation, current[0]):
                if current is not None and not info.description:
                    info = FieldInfo.merge_field_infos(info, description=current[1].description)
                fields[key] = (info.annotation, info)
    return create_model("Recipe", __base__=Recipe, __doc__="An hfkit recipe (any task).", **fields)


def _narrower(new: Any, old: Any) -> bool:
    return isinstance(new, type) and isinstance(old, type) and new is not old and issubclass(new, old)


def json_schema() -> dict[str, Any]:
    """The recipe's JSON Schema: pydantic's, with `task` an enum and `training` TrainingArguments' keys."""
    schema = {"$schema": SCHEMA_URL, **recipe_model().model_json_schema()}
    schema["properties"]["task"]["enum"] = tasks.names()
    schema["properties"]["training"] = {
        "type": "object", "description": schema["properties"]["training"].get("description", ""),
        "properties": {key: _training_property(key) for key in [*training_keys(), *CALLBACK_KEYS]},
        "additionalProperties": False}
    return schema


# --- keys --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class KeyInfo:
    key: str
    kind: str  # the type, readable: "auto | none | padding_free | bfd", "integer > 0", "section"
    default: Any
    description: str
    keys: list[str] = dataclasses.field(default_factory=list)  # a section's own keys


def schema_keys(model: type[BaseModel] | None = None, prefix: str = "") -> dict[str, KeyInfo]:
    """{dotted key: KeyInfo} of every schema key, sections included (training's come from training_keys)."""
    model = model or recipe_model()
    found: dict[str, KeyInfo] = {}
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section(info.annotation)
        if section is not None:
            found[key] = KeyInfo(key, "section", None, info.description or (section.__doc__ or "").strip(),
                                 list(section.model_fields))
            found.update(schema_keys(section, f"{key}."))
        else:
            default = REQUIRED if info.is_required() else info.get_default(call_default_factory=True)
            found[key] = KeyInfo(key, _kind(info), default, info.description or "")
    if not prefix:
        found["task"].kind = " | ".join(tasks.names())
        found["training"].kind = "section: TrainingArguments' fields (hfkit explain training.KEY)"
    return found


def training_keys() -> dict[str, dataclasses.Field]:
    """TrainingArguments' fields a recipe may set (hfkit sets output_dir; removed names are refused)."""
    from transformers import TrainingArguments

    return {f.name: f for f in dataclasses.fields(TrainingArguments)
            if f.init and not f.name.startswith("_") and f.name not in TRAINING_RENAMED}


def key_info(key: str) -> KeyInfo:
    """What `hfkit explain KEY` prints; an unknown key is an error naming the closest one."""
    keys = schema_keys()
    if key in keys:
        return keys[key]
    if key.startswith("training."):
        name = key.removeprefix("training.")
        if name in CALLBACK_KEYS:
            return KeyInfo(key, _TYPE_NAMES.get(CALLBACK_KEYS[name], "value"), None, CALLBACK_HELP[name])
        fields = training_keys()
        if name in fields:
            field = fields[name]
            default = field.default if field.default is not dataclasses.MISSING else None
            return KeyInfo(key, _readable(_training_type(field)), default,
                           " ".join(str(field.metadata.get("help", "")).split()) or "(TrainingArguments)")
        if name in TRAINING_RENAMED:
            raise HfkitError(f"training.{name}: {TRAINING_RENAMED[name]}")
        raise HfkitError(f"unknown key {key!r}{suggest(key, [f'training.{n}' for n in [*fields, *CALLBACK_KEYS]])}")
    raise HfkitError(f"unknown key {key!r}{suggest(key, list(keys))}")


def explain(key: str) -> str:
    """A key's type, default and description; a section's keys, each with its first sentence."""
    info = key_info(key)
    lines = [info.key, f"  type:    {info.kind}"]
    if info.kind != "section":
        lines.append(f"  default: {_shown(info.default)}")
    lines += ["", *_wrap(info.description, "  ")]
    if info.keys:
        everything = schema_keys()
        width = max(len(k) for k in info.keys)
        lines += ["", "  keys:"] + [f"    {k:{width}}  {_first_sentence(everything[f'{info.key}.{k}'].description)}"
                                    for k in info.keys]
    return "\n".join(lines)


def markdown() -> str:
    """The key reference (docs/recipe-keys.md): a table per section, every key but training's (those are
    TrainingArguments' own)."""
    keys = schema_keys()
    lines = ["# Recipe keys", "",
             "Generated by `hfkit schema --markdown` from the recipe schema; `hfkit explain KEY` prints one key.",
             "`training` takes transformers' `TrainingArguments` fields unchanged (plus `early_stopping_patience`",
             "and `early_stopping_threshold`); `hfkit explain training.KEY` prints a field's help.", "",
             "| key | type | what it does |", "|---|---|---|"]
    lines += [f"| `{k}` | {_cell(i.kind)} | {_cell(i.description)} |" for k, i in keys.items() if "." not in k]
    for section in (k for k, i in keys.items() if "." not in k and i.kind == "section" and i.keys):
        lines += ["", f"## `{section}`", "", keys[section].description, "",
                  "| key | type | default | what it does |", "|---|---|---|---|"]
        lines += [f"| `{k}` | {_cell(i.kind)} | {_cell(_shown(i.default))} | {_cell(i.description)} |"
                  for k, i in keys.items() if k.startswith(section + ".") and i.kind != "section"]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2) + "\n"


# --- types, readable ---------------------------------------------------------------------------------

_TYPE_NAMES = {int: "integer", float: "number", bool: "true | false", str: "text", type(None): "null"}


def _section(annotation: Any) -> type[BaseModel] | None:
    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _kind(info: FieldInfo) -> str:
    text = _readable(info.annotation)
    for meta in info.metadata:  # ge/gt/le/lt/min_length constraints, as pydantic keeps them
        for name, symbol in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(meta, name, None) is not None:
                text += f" {symbol} {getattr(meta, name)}"
    return text


def _readable(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        if str in args and any(isinstance(a, type) and issubclass(a, enum.Enum) for a in args):
            args = tuple(a for a in args if a is not str)  # TrainingArguments turns the text into the enum
        return " | ".join(_readable(a) for a in args)
    if origin is typing.Annotated:  # PositiveInt
        text = _readable(args[0])
        return text + (" > 0" if any(getattr(m, "gt", None) == 0 for m in args[1:]) else "")
    if origin in (list, dict):
        return f"{origin.__name__} of " + ", ".join(_readable(a) for a in args) if args else origin.__name__
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(m.value) for m in annotation)
    if annotation is Any:
        return "any"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _training_type(field: dataclasses.Field) -> Any:
    from transformers import TrainingArguments

    return typing.get_type_hints(TrainingArguments).get(field.name, Any)


def _training_property(name: str) -> dict[str, Any]:
    if name in CALLBACK_KEYS:
        return {"type": "integer" if CALLBACK_KEYS[name] is int else "number", "description": CALLBACK_HELP[name]}
    field = training_keys()[name]
    prop = _json_type(_training_type(field))
    prop["description"] = " ".join(str(field.metadata.get("help", "")).split())
    if field.default is not dataclasses.MISSING and isinstance(field.default, (int, float, str, bool)):
        prop["default"] = field.default.value if isinstance(field.default, enum.Enum) else field.default
    return prop


def _json_type(annotation: Any) -> dict[str, Any]:
    """A JSON Schema for a TrainingArguments annotation; what it cannot say simply, it leaves open."""
    simple = {int: "integer", float: "number", bool: "boolean", str: "string", type(None): "null"}
    if annotation in simple:
        return {"type": simple[annotation]}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [m.value for m in annotation]}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and str in args:  # TrainingArguments turns the string into the enum: only its values work
            rest = [_json_type(a) for a in args if a is not str and a not in enums]
            return {"anyOf": [{"enum": [m.value for e in enums for m in e]}, *rest]} if rest else \
                {"enum": [m.value for e in enums for m in e]}
        parts = [_json_type(a) for a in args]
        return {} if any(not p for p in parts) else {"anyOf": parts}
    if origin is list:
        return {"type": "array", "items": _json_type(args[0]) if args else {}}
    return {}


def _shown(value: Any) -> str:
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "unset"
    if value is REQUIRED:
        return value
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else (value or '""')


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0]
    return head if head.endswith(".") else head + "."


def _wrap(text: str, indent: str, width: int = 96) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent) or [indent.rstrip()]
