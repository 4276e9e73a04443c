"""The recipe schema: one pydantic section per part of a recipe file.

A leaf module: it imports nothing of hfkit but its errors, so every other module can use it.
Task-specific options (QA's `qa:` section, translation's languages) are declared by the task
modules, which subclass `Recipe` and `DataSection` (see `hfkit.tasks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EncoderDecoderSection(Section):
    """Two encoder checkpoints warm-started into one EncoderDecoderModel (bert2bert)."""

    encoder: str = Field(min_length=1)
    decoder: str = Field(min_length=1)


class ModelSection(Section):
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


class CleanSection(Section):
    """Cleaning of the TRAINING split, run in this order; each step can be switched off.

    Evaluation splits are never cleaned: they are scored exactly as the files hold them."""

    normalize_unicode: bool = True  # NFKC
    normalize_whitespace: bool = True  # line endings, trailing spaces, blank lines at both ends; indentation stays
    drop_empty: bool = True
    min_chars: int | None = Field(None, ge=0)
    max_chars: PositiveInt | None = None
    dedup: bool = True  # exact duplicates of the normalised example
    near_dedup: bool = False  # MinHash near-duplicates; off by default: it can drop real data
    near_dedup_threshold: float = Field(0.85, gt=0, le=1)
    decontaminate: bool = True  # drop training examples that also appear in an eval split


class DataSection(Section):
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
    # A JSON file holding one object: the key whose list holds the examples (as load_dataset's
    # `field`); unset, a top-level "data" list is read (SQuAD's layout, nested or flat).
    field: str | None = Field(None, min_length=1)
    clean: CleanSection = Field(default_factory=CleanSection)
    max_train_samples: PositiveInt | None = None
    max_eval_samples: PositiveInt | None = None
    validation_fraction: float = Field(0.05, gt=0, lt=1)  # held out when there is no validation split
    num_proc: PositiveInt | None = None
    max_length: PositiveInt | None = None  # decoder-only: prompt + target tokens (unset: 512 or the model's max)
    block_size: PositiveInt | None = None  # format: text packs tokens into blocks of this size
    # A prompt longer than its budget loses tokens from its middle (the instruction at its start and
    # the answer cue at its end stay) or from its left; the target is never cut.
    truncation_side: Literal["middle", "left"] = "middle"
    # Wrap the prompt as a user turn of the tokenizer's chat template. Unset: off for the
    # generation task's prompt_completion, on for the other tasks when the tokenizer has one.
    chat_template: bool | None = None
    # Generated-answer prompt: {source} for translation/summarization, {question} and {context} for qa
    prompt_template: str | None = None
    source_prefix: str = ""  # encoder-decoder input prefix, e.g. T5's "translate English to Romanian: "
    max_source_length: PositiveInt | None = None  # encoder-decoder (unset: 1024 or the model's max)
    max_target_length: PositiveInt = 128  # encoder-decoder
    # Training rows of decoder-only prompt/target examples (hfkit.tasks.packing): none (padded),
    # padding_free (a batch as one row), bfd (rows of max_length, best fit decreasing); the loss
    # stays exactly that of unpacked examples. auto: padding_free for a flash-attention model, else none.
    packing: Literal["auto", "none", "padding_free", "bfd"] = "auto"
    # Read, clean and tokenize the training split on the fly (hfkit.streaming); needs training.max_steps.
    streaming: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        has_files = any((self.train_file, self.validation_file, self.test_file))
        if self.dataset and has_files:
            raise ValueError("give either data.dataset (a Hub dataset) or data.*_file (local files), not both")
        if not self.dataset and not has_files:
            raise ValueError("no data: set data.train_file (a local file) or data.dataset (a Hub dataset name)")
        return self

    @property
    def first_file(self) -> str | None:
        return self.train_file or self.validation_file or self.test_file


class PeftSection(Section):
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


class GenerationSection(Section):
    max_new_tokens: PositiveInt = 64
    num_beams: PositiveInt = 1
    do_sample: bool = False
    top_k: PositiveInt | None = None
    top_p: float | None = Field(None, gt=0, le=1)
    temperature: float | None = Field(None, gt=0)
    repetition_penalty: float | None = Field(None, gt=0)
    # `hfkit eval` scores each of these decoding strategies (as its --decode flags), e.g.
    # [greedy, beam=4, "top_k=50,temperature=0.7", top_p=0.9]; `hfkit train` uses the settings above
    sweep: list[str] | None = None

    @field_validator("sweep")
    @classmethod
    def _strategies(cls, value: list[str] | None) -> list[str] | None:
        for spec in value or []:
            decoding_strategy(GenerationSection(), spec)
        return value


SAMPLING_KEYS = ("top_k", "top_p", "temperature")
STRATEGY_KEYS = ("num_beams", "do_sample", *SAMPLING_KEYS, "repetition_penalty")


def decoding_strategy(base: GenerationSection, spec: str) -> GenerationSection:
    """`base` decoding with one strategy applied: `greedy`, `beam=N`, or comma-separated keys
    (top_k, top_p, temperature, num_beams, do_sample, repetition_penalty). Each strategy starts
    from greedy; top_k, top_p or temperature imply sampling (do_sample) unless do_sample is given.
    max_new_tokens stays the recipe's: it also sets how much of a long prompt is kept."""
    settings: dict[str, Any] = {"num_beams": 1, "do_sample": False, **dict.fromkeys(SAMPLING_KEYS)}
    given = set()
    for item in filter(None, (part.strip() for part in str(spec).split(","))):
        key, _, raw = item.partition("=")
        key = {"beam": "num_beams", "beams": "num_beams"}.get(key.strip(), key.strip())
        if key == "greedy" and not raw:
            continue
        if key not in STRATEGY_KEYS or not raw:
            raise ValueError(f"decoding strategy {spec!r}: cannot read {item!r}; use greedy, beam=N, top_k=K, "
                             f"top_p=P, temperature=T (comma-separated), or {', '.join(STRATEGY_KEYS)}")
        settings[key] = yaml.safe_load(raw)
        given.add(key)
    if "do_sample" not in given and any(settings[k] is not None for k in SAMPLING_KEYS):
        settings["do_sample"] = True
    try:
        return GenerationSection(**{**base.model_dump(), **settings, "sweep": None})
    except ValueError as err:
        problem = err.errors()[0] if hasattr(err, "errors") else {"loc": ("?",), "msg": str(err)}
        raise ValueError(f"decoding strategy {spec!r}: {problem['loc'][0]}: {problem['msg']}") from None


class EvalSection(Section):
    metrics: list[str] | None = None  # None: the task's default metrics; "org/name" loads a Hub metric
    metric_args: dict[str, dict[str, Any]] = Field(default_factory=dict)  # e.g. {sacrebleu: {tokenize: intl}}
    trust_remote_code: bool = False  # a Hub metric ("org/name") runs its repository's script: only when set
    baseline: bool = False  # also score the untuned model before training
    split: Literal["validation", "test"] = "validation"
    # float32: scores do not depend on the eval batch size, the process count or the training dtype
    # (bf16 batched decoding changed 27 of 60 translation predictions). auto: the model's own dtype.
    dtype: Literal["float32", "auto"] = "float32"
    # 95% bootstrap confidence intervals of every score, from this many resamples (seeded); 0: none
    bootstrap: int = Field(1000, ge=0)
    # during training (training.eval_strategy: steps|epoch): score only the first N eval examples;
    # the final evaluation always scores the whole split
    during_training_samples: PositiveInt | None = None


class OutputSection(Section):
    dir: str = "runs"
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a plain name: no '/', no '..'
    timestamp: bool = True  # append the UTC time, so every run gets its own folder


class HubSection(Section):
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


class Recipe(Section):
    """A whole recipe. Tasks with options of their own subclass it (and DataSection)."""

    task: str
    model: ModelSection
    data: DataSection
    peft: PeftSection = Field(default_factory=PeftSection)
    training: dict[str, Any] = Field(default_factory=dict)  # TrainingArguments, unchanged
    generation: GenerationSection = Field(default_factory=GenerationSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    output: OutputSection = Field(default_factory=OutputSection)
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


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys of the section at `loc` of `model` (empty when it is not a schema section)."""
    section = model
    for part in loc:
        field = section.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        section = annotation
    return list(section.model_fields)
