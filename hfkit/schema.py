"""The recipe schema: one pydantic section per part of a recipe file.

A leaf module: it imports nothing of hfkit but hfkit.schema_clean (the `data.clean` section), so
every other module can use it.
Task-specific options (QA's `qa:` section, translation's languages) are declared by the task
modules, which subclass `Recipe` and `DataSection` (see `hfkit.tasks`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, PositiveInt, PrivateAttr, field_validator, model_validator

from hfkit.schema_clean import CleanSection, Section  # noqa: F401 - re-exported: data.clean is part of the recipe


class EncoderDecoderSection(Section):
    """Two encoder checkpoints warm-started into one EncoderDecoderModel (bert2bert)."""

    encoder: str = Field(min_length=1, description="The encoder checkpoint: a Hub id, a local folder or an alias.")
    decoder: str = Field(min_length=1, description="The decoder checkpoint (an encoder model; cross-attention is added).")


class ModelSection(Section):
    """The pretrained checkpoint: one model, or two encoders joined into an encoder-decoder."""

    name_or_path: str | None = Field(None, min_length=1, description=(
        "The checkpoint: a Hub id, a local folder, a .gguf file, or an offline alias "
        "(smollm2-135m-instruct, minilm-l6). Set this or encoder_decoder."))
    encoder_decoder: EncoderDecoderSection | None = Field(None, description=(
        "Two encoder checkpoints warm-started into one encoder-decoder model (bert2bert), instead of name_or_path."))
    gguf_file: str | None = Field(None, description="The .gguf file inside name_or_path's folder; it is dequantised once.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description=(
        "Weights' dtype when loading. auto: the checkpoint's own, except a LoRA base in bfloat16 where the "
        "hardware computes it natively."))
    trust_remote_code: bool = Field(False, description=(
        "Run Python code from the model's repository (custom architectures). Off unless the recipe says so."))
    allow_pickle: bool = Field(False, description=(
        "Load pickled .bin weights, which can run code when read; off: safetensors only."))
    revision: str | None = Field(None, description="A branch, tag or commit of a Hub model.")

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


class DataSection(Section):
    """Where the examples come from, how they are cleaned and how they become model inputs."""

    train_file: str | None = Field(None, description=(
        "Training data file: .json, .jsonl, .csv, .parquet or .txt (relative to the recipe file)."))
    validation_file: str | None = Field(None, description=(
        "Validation data file; without one, data.validation_fraction of the training file is held out."))
    test_file: str | None = Field(None, description="Test data file, scored when eval.split is test.")
    dataset: str | None = Field(None, description="A Hub dataset name (needs the Hub), instead of local files.")
    config: str | None = Field(None, description="The Hub dataset's configuration, e.g. ro-en for wmt16.")
    train_split: str = Field("train", description="The Hub dataset's split used for training.")
    validation_split: str = Field("validation", description="The Hub dataset's split used for validation.")
    test_split: str = Field("test", description="The Hub dataset's split used as the test split.")
    format: str | None = Field(None, description=(
        "How the examples are laid out; each task lists its formats (generation: prompt_completion, "
        "messages, text; translation: pairs, wmt; qa: squad). Unset: the task's default."))
    file_type: Literal["json", "jsonl", "csv", "parquet", "txt"] | None = Field(None, description=(
        "How to read a data file whose name (and its symbolic link target's) has no extension hfkit knows, "
        "e.g. a Hub cache blob; a known extension always decides."))
    columns: dict[str, str] = Field(default_factory=dict, description=(
        "Renames: the file's column -> the task's field, e.g. {article: document, highlights: summary}."))
    field: str | None = Field(None, min_length=1, description=(
        "A JSON file holding one object: the key whose list holds the examples (as load_dataset's field); "
        "unset, a top-level data list is read (SQuAD's layout)."))
    clean: CleanSection = Field(default_factory=CleanSection, description=(
        "Cleaning of the training split (normalisation, filters, dedup, decontamination); eval data is never cleaned."))
    max_train_samples: PositiveInt | None = Field(None, description="Use only the first N training examples.")
    max_eval_samples: PositiveInt | None = Field(None, description="Score only the first N examples of the eval split.")
    validation_fraction: float = Field(0.05, gt=0, lt=1, description=(
        "Share of the training data held out (seeded) when there is no validation split."))
    num_proc: PositiveInt | None = Field(None, description="Processes for datasets.map while preparing the data.")
    max_length: PositiveInt | None = Field(None, description=(
        "Decoder-only: prompt + target tokens per example (unset: 512 or the model's maximum). A longer "
        "prompt is cut; the target never is: a training example without room is dropped (counted), an "
        "evaluation example keeps its whole target past the limit."))
    block_size: PositiveInt | None = Field(None, description=(
        "format: text: tokens per packed block (unset: 1024 or the model's maximum)."))
    truncation_side: Literal["middle", "left"] = Field("middle", description=(
        "Where a too-long prompt loses tokens: its middle (the instruction at its start and the answer cue "
        "at its end stay) or its left. The target is never cut."))
    chat_template: bool | None = Field(None, description=(
        "Wrap the prompt as a user turn of the tokenizer's chat template. Unset: off for the generation "
        "task's prompt_completion, on for the other tasks when the tokenizer has one."))
    prompt_template: str | None = Field(None, description=(
        "The prompt of generated answers: {source} for translation and summarization, {question} and "
        "{context} for qa (literal braces doubled)."))
    source_prefix: str = Field("", description=(
        "Encoder-decoder: text put before every source, e.g. T5's 'translate English to Romanian: '."))
    max_source_length: PositiveInt | None = Field(None, description=(
        "Encoder-decoder: source tokens (unset: 1024 or the model's maximum); a longer source is cut."))
    max_target_length: PositiveInt = Field(128, description=(
        "Encoder-decoder: target tokens; a training example with a longer target is dropped (counted), an "
        "evaluation example keeps it whole."))
    packing: Literal["auto", "none", "padding_free", "bfd"] = Field("auto", description=(
        "Training rows of decoder-only prompt/target examples: none (padded), padding_free (a batch as one "
        "row), bfd (rows of max_length, best fit decreasing); the loss stays that of unpacked examples. "
        "auto: padding_free where the model's attention takes the examples' boundaries (sdpa, through hfkit's "
        "per-example sdpa, or flash-attention), else none."))
    streaming: bool = Field(False, description=(
        "Read, clean and tokenize the training split on the fly instead of all at once; needs training.max_steps."))

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
    """Parameter-efficient fine-tuning through peft: LoRA (or DoRA) adapters, QLoRA, or none (full fine-tuning)."""

    method: Literal["lora", "qlora", "none"] = Field("lora", description=(
        "lora: train low-rank adapters on a frozen base (peft); qlora: LoRA on a base quantised to 4-bit NF4 "
        "(bitsandbytes, pip install 'hfkit[qlora]'); none: full fine-tuning of every weight."))
    r: PositiveInt = Field(8, description="LoRA rank: the inner dimension of each adapter's two matrices.")
    alpha: PositiveInt = Field(16, description="LoRA scaling: the adapter's output is multiplied by alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on each LoRA layer's input while training (0 to 1).")
    target_modules: Any = Field("all-linear", description=(
        "The layers that get adapters: all-linear, or a list of module names such as [q_proj, v_proj]."))
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA (a learned magnitude per output).")

    @field_validator("target_modules")
    @classmethod
    def _modules(cls, value: Any) -> str | list[str]:
        if value == "all-linear" or (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError("expected 'all-linear' or a non-empty list of module names, e.g. [q_proj, v_proj]")

    @property
    def adapter(self) -> bool:
        """Does training save an adapter (LoRA or QLoRA) rather than a whole model?"""
        return self.method in ("lora", "qlora")


class GenerationSection(Section):
    """Decoding settings of every evaluation: the baseline, the evaluations while training and the final one."""

    max_new_tokens: PositiveInt = Field(64, description=(
        "Longest generated answer, in tokens; decoder-only prompts keep max_length minus this."))
    num_beams: PositiveInt = Field(1, description="Beam search width; 1 is greedy (or sampling with do_sample).")
    do_sample: bool = Field(False, description="Sample the next token instead of taking the most likely one (seeded).")
    top_k: PositiveInt | None = Field(None, description="Sampling: keep only the k most likely tokens.")
    top_p: float | None = Field(None, gt=0, le=1, description=(
        "Sampling: keep the smallest set of tokens whose probabilities add up to p (0 to 1)."))
    temperature: float | None = Field(None, gt=0, description="Sampling: divide the logits by this (below 1: sharper).")
    repetition_penalty: float | None = Field(None, gt=0, description=(
        "Divide the scores of tokens already generated by this (above 1: less repetition)."))
    sweep: list[str] | None = Field(None, description=(
        "Decoding strategies `hfkit eval` scores side by side, e.g. [greedy, beam=4, 'top_k=50,temperature=0.7']; "
        "hfkit train uses the settings above."))

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
    items = [part.strip() for part in str(spec).split(",") if part.strip()]
    if not items:
        raise ValueError(f"decoding strategy {spec!r} is empty; use greedy, beam=N, top_k=K, top_p=P, temperature=T "
                         "(comma-separated)")
    for item in items:
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
    """What is scored, on which split, and how (dtype, confidence intervals)."""

    metrics: list[str] | None = Field(None, description=(
        "Metrics to report (sacrebleu, chrf, chrfpp, ter, rouge, exact_match, macro_f1, squad, squad_v2); unset: "
        "the task's defaults; module:ATTRIBUTE names your own MetricSpec; org/name loads a Hub metric."))
    metric_args: dict[str, dict[str, Any]] = Field(default_factory=dict, description=(
        "Options per metric, e.g. {sacrebleu: {tokenize: intl}}, {rouge: {tokenizer: char}}."))
    trust_remote_code: bool = Field(False, description=(
        "Let a Hub metric (org/name) run its repository's script; off unless the recipe says so."))
    baseline: bool = Field(False, description="Also score the untuned model before training, for a before/after table.")
    split: Literal["validation", "test"] = Field("validation", description="The split the final scores are computed on.")
    dtype: Literal["float32", "auto"] = Field("float32", description=(
        "What the model computes in while scoring. float32: scores do not depend on the eval batch size, "
        "process count or training dtype; auto: the model's own dtype (faster, without that guarantee)."))
    bootstrap: int = Field(1000, ge=0, description=(
        "Resamples for the 95% bootstrap confidence interval of every score (seeded); 0: no intervals."))
    during_training_samples: PositiveInt | None = Field(None, description=(
        "While training (training.eval_strategy: steps or epoch), score only the first N eval examples; the "
        "final evaluation always scores the whole split."))


class ResourcesSection(Section):
    """What training may use (hfkit.memory_plan)."""

    memory_gb: Literal["auto", "off"] | float = Field("auto", description=(
        "The peak memory (GiB) training must fit in, planned before the first step: auto = 85% of the memory "
        "available to this process (free RAM on a CPU, free memory on its GPU, shared among the processes of "
        "the machine); a number; off = no plan (train as the recipe says, unchecked)."))

    @field_validator("memory_gb", mode="before")
    @classmethod
    def _auto_off_or_positive(cls, value: Any) -> Any:
        if value is False:  # YAML reads a bare `off` as false
            return "off"
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value in ("auto", "off") or number and 0 < value < float("inf"):
            return value
        raise ValueError("expected auto, off or a number of GiB above 0, e.g. 8")


class OutputSection(Section):
    """Where the run folder is written: DIR/NAME-UTC_TIME."""

    dir: str = Field("runs", description="The folder that holds run folders.")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description=(
        "The run folder's name (letters, digits, . _ -); unset: TASK-RECIPE_FILE_NAME."))
    timestamp: bool = Field(True, description="Append the UTC time to the name, so every run gets its own folder.")


class HubSection(Section):
    """Publishing: `hfkit push`, or at the end of `hfkit train` when `push` is true."""

    push: bool = Field(False, description="Push the run to the Hub at the end of hfkit train (needs repo_id).")
    repo_id: str | None = Field(None, description="The Hub repository, e.g. your-name/smollm2-dates-lora.")
    private: bool = Field(False, description="Create the repository private.")
    merge: bool = Field(False, description="Upload the adapter merged into its base model instead of the adapter.")
    revision: str | None = Field(None, description="The branch to push to; created when missing.")
    license: str | None = Field(None, description="The model card's license, e.g. apache-2.0.")
    language: list[str] | None = Field(None, description=(
        "The model card's languages; translation defaults to its two languages."))
    tags: list[str] = Field(default_factory=list, description="The model card's tags, besides hfkit, the task and lora.")

    @field_validator("repo_id")
    @classmethod
    def _repo_id(cls, value: str | None) -> str | None:
        return None if value is None else check_repo_id(value)

    @model_validator(mode="after")
    def _repo_when_pushing(self) -> HubSection:
        if self.push and not self.repo_id:
            raise ValueError("hub.push: true needs hub.repo_id, e.g. your-name/my-model")
        return self


def check_repo_id(repo_id: str) -> str:
    """`repo_id`, or ValueError when it is not a valid Hub repo id (huggingface_hub's own rules): a bad
    id is refused before training rather than by the push at its end."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"{repo_id!r} is not a Hub repo id: {str(err).split(': ', 1)[0].rstrip('.')}; "
                         "write it as name or namespace/name, e.g. your-name/my-model") from None
    return repo_id


class Recipe(Section):
    """A whole recipe. Tasks with options of their own subclass it (and DataSection)."""

    task: str = Field(description="What the model learns: generation, translation, summarization or qa.")
    model: ModelSection = Field(description="The pretrained checkpoint to start from.")
    data: DataSection = Field(description="Where the examples come from and how they become model inputs.")
    peft: PeftSection = Field(default_factory=PeftSection, description="LoRA adapters (peft), or full fine-tuning.")
    training: dict[str, Any] = Field(default_factory=dict, description=(
        "transformers.TrainingArguments, passed unchanged (v5 names), plus early_stopping_patience and "
        "early_stopping_threshold."))
    generation: GenerationSection = Field(default_factory=GenerationSection, description=(
        "Decoding settings of every evaluation (baseline, during training, final)."))
    eval: EvalSection = Field(default_factory=EvalSection, description="What is scored, on which split, and how.")
    resources: ResourcesSection = Field(default_factory=ResourcesSection, description=(
        "What training may use: the memory budget the memory plan fits."))
    output: OutputSection = Field(default_factory=OutputSection, description="Where the run folder is written.")
    hub: HubSection = Field(default_factory=HubSection, description="Publishing to the Hugging Face Hub.")

    _path: Path | None = PrivateAttr(None)
    _overridden: set[str] = PrivateAttr(default_factory=set)  # dotted keys set on the command line

    @property
    def path(self) -> Path | None:
        """The file this recipe was read from."""
        return self._path

    @property
    def run_name(self) -> str:
        """output.name, else TASK-<the recipe file's name> in the characters output.name allows
        (`my recipe ü.yaml` -> generation-my-recipe-u)."""
        if self.output.name:
            return self.output.name
        import re
        import unicodedata

        stem = unicodedata.normalize("NFKD", self._path.stem if self._path else "recipe").encode("ascii", "ignore")
        plain = re.sub(r"[^A-Za-z0-9._-]+", "-", stem.decode()).strip("-.") or "recipe"
        return f"{self.task}-{plain}"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The valid keys of the section at `loc` of `model` (empty when it is not a schema section)."""
    section = model
    for part in loc:
        field = section.model_fields.get(str(part))
        annotation = field.annotation if field else None
        # `RepetitionRules | None`: the section inside an optional
        annotation = next((arg for arg in getattr(annotation, "__args__", ()) if isinstance(arg, type)
                           and issubclass(arg, BaseModel)), annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        section = annotation
    return list(section.model_fields)
