"""Recipes: one YAML file per job, validated into a `Recipe`.

`load_recipe(path, overrides)` reads the file with a safe YAML loader, applies `key=value`
overrides from the command line, resolves relative paths and validates everything with pydantic.
Every mistake becomes an `HfkitError` whose message names the file, the dotted key, what was
expected and the closest valid name.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError, field_validator, model_validator

from hfkit.errors import HfkitError


class RecipeLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`).

    Learning rates are written like that in every recipe, and a string learning rate
    would only fail deep inside the optimizer.
    """


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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderDecoderSection(_Section):
    """Two encoder checkpoints warm-started into one EncoderDecoderModel (bert2bert)."""

    encoder: str = Field(min_length=1)
    decoder: str = Field(min_length=1)


class ModelSection(_Section):
    name_or_path: str | None = Field(None, min_length=1)
    encoder_decoder: EncoderDecoderSection | None = None
    gguf_file: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    trust_remote_code: bool = False  # run code from the model's repository only when the recipe says so
    allow_pickle: bool = False  # load pickled .bin weights (they can run code); safetensors otherwise
    revision: str | None = None

    @model_validator(mode="after")
    def _one_checkpoint(self) -> ModelSection:
        if (self.name_or_path is None) == (self.encoder_decoder is None):
            raise ValueError("set exactly one of model.name_or_path and model.encoder_decoder: {encoder, decoder}")
        return self

    @property
    def display_name(self) -> str:
        if self.encoder_decoder:
            return f"{self.encoder_decoder.encoder}+{self.encoder_decoder.decoder}"
        return self.name_or_path


class CleanSection(_Section):
    """Cleaning steps, run in this order; each can be switched off."""

    normalize_unicode: bool = True  # NFKC
    normalize_whitespace: bool = True  # collapse spaces/tabs, strip lines; keeps newlines
    drop_empty: bool = True
    min_chars: int | None = Field(None, ge=0)
    max_chars: PositiveInt | None = None
    dedup: bool = True  # exact duplicates of the normalised example
    near_dedup: bool = False  # MinHash near-duplicates; off by default: it can drop real data
    near_dedup_threshold: float = Field(0.85, gt=0, le=1)
    decontaminate: bool = True  # drop training examples that also appear in an eval split


class DataSection(_Section):
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    dataset: str | None = None  # a Hub dataset name
    config: str | None = None
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    format: str | None = None  # the task says which formats exist and which is the default
    columns: dict[str, str] = Field(default_factory=dict)  # the file's column -> the task's field
    clean: CleanSection = Field(default_factory=CleanSection)
    max_train_samples: PositiveInt | None = None
    max_eval_samples: PositiveInt | None = None
    validation_fraction: float = Field(0.05, gt=0, lt=1)  # held out when there is no validation split
    num_proc: PositiveInt | None = None
    max_length: PositiveInt | None = None  # decoder-only: prompt + target tokens (unset: 512 or the model's max)
    block_size: PositiveInt | None = None  # format: text packs tokens into blocks of this size
    # Wrap the prompt as a user turn of the tokenizer's chat template. Unset: off for the
    # generation task's prompt_completion, on for translation/summarization when the tokenizer has one.
    chat_template: bool | None = None
    # Generated-answer prompt: {source} for translation/summarization, {question} and {context} for qa
    prompt_template: str | None = None
    source_lang: str | None = None  # translation: keys of the WMT layout, e.g. en
    target_lang: str | None = None
    source_prefix: str = ""  # encoder-decoder input prefix, e.g. T5's "translate English to Romanian: "
    max_source_length: PositiveInt | None = None  # encoder-decoder (unset: 1024 or the model's max)
    max_target_length: PositiveInt = 128  # encoder-decoder

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        has_files = any((self.train_file, self.validation_file, self.test_file))
        if self.dataset and has_files:
            raise ValueError("give either data.dataset (a Hub dataset) or data.*_file (local files), not both")
        if not self.dataset and not has_files:
            raise ValueError("no data: set data.train_file (a local file) or data.dataset (a Hub dataset name)")
        return self


class PeftSection(_Section):
    method: Literal["lora", "none"] = "lora"
    r: PositiveInt = 8
    alpha: PositiveInt = 16
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Any = "all-linear"
    use_dora: bool = False

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, value: Any) -> str | list[str]:
        if value == "all-linear" or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError("expected 'all-linear' or a non-empty list of module names, e.g. [q_proj, v_proj]")


class GenerationSection(_Section):
    max_new_tokens: PositiveInt = 64
    num_beams: PositiveInt = 1
    do_sample: bool = False
    top_k: PositiveInt | None = None
    top_p: float | None = Field(None, gt=0, le=1)
    temperature: float | None = Field(None, gt=0)
    repetition_penalty: float | None = Field(None, gt=0)


class QASection(_Section):
    """Question answering: extractive spans (SQuAD) or generated answers."""

    mode: Literal["extractive", "generative"] = "extractive"
    version_2_with_negative: bool = False  # SQuAD v2: some questions have no answer in the context
    max_seq_length: PositiveInt = 384  # extractive: question + context window, in tokens
    doc_stride: PositiveInt = 128  # extractive: overlap between windows of a long context
    n_best_size: PositiveInt = 20  # extractive: start/end candidates per window
    max_answer_length: PositiveInt = 30  # extractive: longest answer span, in tokens
    null_score_diff_threshold: float = 0.0  # v2: predict "no answer" when its score wins by more than this

    @model_validator(mode="after")
    def _stride_fits(self) -> QASection:
        if self.doc_stride >= self.max_seq_length:
            raise ValueError(f"qa.doc_stride ({self.doc_stride}) must be smaller than qa.max_seq_length "
                             f"({self.max_seq_length})")
        return self


class EvalSection(_Section):
    metrics: list[str] | None = None  # None: the task's default metrics; "org/name" loads a Hub metric
    metric_args: dict[str, dict[str, Any]] = Field(default_factory=dict)  # e.g. {sacrebleu: {tokenize: intl}}
    baseline: bool = False  # also score the untuned model before training
    split: Literal["validation", "test"] = "validation"


class OutputSection(_Section):
    dir: str = "runs"
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a plain name: no '/', no '..'
    timestamp: bool = True  # append the UTC time, so every run gets its own folder


class HubSection(_Section):
    """Publishing: `hfkit push`, or at the end of `hfkit train` when `push` is true."""

    push: bool = False
    repo_id: str | None = None  # e.g. your-name/smollm2-dates-lora
    private: bool = False
    merge: bool = False  # upload the merged model instead of the adapter
    revision: str | None = None  # a branch; created when missing
    license: str | None = None  # for the model card, e.g. apache-2.0
    language: list[str] | None = None  # for the model card; translation defaults to its two languages
    tags: list[str] = Field(default_factory=list)  # besides hfkit, the task and lora

    @model_validator(mode="after")
    def _repo_when_pushing(self) -> HubSection:
        if self.push and not self.repo_id:
            raise ValueError("hub.push: true needs hub.repo_id, e.g. your-name/my-model")
        return self


class Recipe(_Section):
    task: str
    model: ModelSection
    data: DataSection
    peft: PeftSection = Field(default_factory=PeftSection)
    training: dict[str, Any] = Field(default_factory=dict)  # TrainingArguments, unchanged
    generation: GenerationSection = Field(default_factory=GenerationSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    output: OutputSection = Field(default_factory=OutputSection)
    qa: QASection = Field(default_factory=QASection)
    hub: HubSection = Field(default_factory=HubSection)

    _path: Path | None = PrivateAttr(None)

    @property
    def path(self) -> Path | None:
        """The file this recipe was read from."""
        return self._path

    @property
    def run_name(self) -> str:
        if self.output.name:
            return self.output.name
        stem = self._path.stem if self._path else "recipe"
        return f"{self.task}-{stem}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


_PATH_KEYS = ("train_file", "validation_file", "test_file")


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override, resolve and validate a recipe file."""
    path = Path(path)
    raw = _read_yaml(path)
    _resolve_paths(raw, base=path.resolve().parent)
    apply_overrides(raw, overrides)
    _resolve_paths(raw, base=Path.cwd())  # relative paths given as overrides are relative to the shell
    recipe = validate_recipe(raw, where=str(path))
    recipe._path = path
    return recipe


def validate_recipe(raw: dict[str, Any], where: str) -> Recipe:
    """Validate a recipe dict against the schema and against the task it names."""
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as err:
        raise HfkitError(_format_errors(err, where)) from None
    _check_task(recipe, where)
    return recipe


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> None:
    """Apply `a.b.c=value` overrides in place; values are parsed as YAML (numbers, lists, null)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise HfkitError(
                f"malformed override {item!r}: expected KEY=VALUE with a dotted key, "
                "e.g. training.max_steps=100 or eval.metrics=[exact_match]"
            )
        try:
            value = yaml.load(text, Loader=RecipeLoader) if text.strip() else None
        except yaml.YAMLError as err:
            raise HfkitError(f"override {item!r}: the value is not valid YAML ({_first_line(err)})") from None
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


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HfkitError(f"recipe file not found: {path} (ls recipes/ lists the recipes that come with hfkit)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise HfkitError(f"{path}: not valid UTF-8 (byte {err.start}); save the recipe as UTF-8") from None
    try:
        raw = yaml.load(text, Loader=RecipeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise HfkitError(f"{where}: YAML syntax error: {_first_line(err)}") from None
    if not isinstance(raw, dict):
        raise HfkitError(f"{path}: a recipe must be a YAML mapping with keys task, model, data, ...")
    return raw


def _first_line(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    return problem or str(err).splitlines()[0]


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


def _format_errors(err: ValidationError, where: str) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key{suggest(e['loc'][-1], _fields_at(e['loc'][:-1]))}")
        elif e["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            shown = e.get("input")
            got = f" (got {shown!r})" if isinstance(shown, (str, int, float, bool)) or shown is None else ""
            lines.append(f"{loc}: {msg}{got}")
    return _bad_recipe(where, lines)


def _bad_recipe(where: str, lines: list[str]) -> str:
    if len(lines) == 1:
        return f"{where}: {lines[0]}"
    return f"{where}: {len(lines)} problems:\n" + "\n".join(f"  - {line}" for line in lines)


def _fields_at(loc: tuple) -> list[str]:
    """The valid keys of the section at `loc` (empty when it is not a schema section)."""
    section: type[BaseModel] = Recipe
    for part in loc:
        field = section.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        section = annotation
    return list(section.model_fields)


def suggest(name: Any, valid: list[str]) -> str:
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(valid)}" if valid else ""


def _check_task(recipe: Recipe, where: str) -> None:
    """Checks that need the task: its name, data format, metrics and the TrainingArguments keys."""
    from hfkit import metrics, tasks  # the task modules import transformers: only load them here
    from hfkit.training_keys import training_key_problems

    if recipe.task not in tasks.names():
        raise HfkitError(f"{where}: task: unknown task {recipe.task!r}{_suggest_value(recipe.task, tasks.names())}")
    task = tasks.get(recipe.task)
    problems = []
    fmt = recipe.data.format
    if fmt is not None and fmt not in task.formats:
        problems.append(f"data.format: {fmt!r} is not a format of task {task.name!r}; expected one of {', '.join(task.formats)}")
    for name in recipe.eval.metrics or []:
        if not metrics.is_known(name):
            problems.append(f"eval.metrics: unknown metric {name!r}{_suggest_value(name, metrics.names())} "
                            "(or a Hub metric id like 'org/name')")
    for name in recipe.eval.metric_args:
        if name not in (recipe.eval.metrics or task.default_metrics(recipe)):
            problems.append(f"eval.metric_args: {name!r} is not one of the recipe's metrics")
    if task.needs_languages and not (recipe.data.source_lang and recipe.data.target_lang):
        problems.append("data.source_lang / data.target_lang: translation needs both, e.g. en and ro")
    problems += training_key_problems(recipe.training, task.training_args_class())
    if problems:
        raise HfkitError(_bad_recipe(where, problems))


def _suggest_value(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"; {hint}expected one of: {', '.join(valid)}"
