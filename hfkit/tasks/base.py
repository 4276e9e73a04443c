"""What every task is: a small class bound once to a recipe, its data format and its model family.

A task owns everything that differs between tasks: its schema (options), the columns it reads,
how examples become tokens, what evaluation generates and compares, its default metrics, the
transformers classes it trains with, and how a model card describes it. The job (hfkit.job)
drives any task through the same phases without knowing which one it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from hfkit.schema import Recipe

IGNORE = -100  # the label of a position that carries no loss (prompt, padding)


@dataclass(frozen=True)
class EvalExamples:
    """What evaluation generates from and scores against, one entry per eval example, in order."""

    prompts: list[list[int]]  # token ids to generate from (empty for tasks that do not generate)
    references: list[Any]  # what the predictions are compared with
    sources: list[str]  # the human-readable input, for predictions.jsonl
    ids: list[str]  # a stable id per example (the data's id, else a hash of input and reference)
    counts: dict[str, int] = field(default_factory=dict)  # e.g. prompts cut to fit


@dataclass(frozen=True)
class Tokenized:
    """A tokenized split and what tokenizing it cut or dropped (shown and kept in metrics.json)."""

    dataset: Any
    counts: dict[str, int]
    # training data that lost more than 10% of its examples to the length limit: the limit that would
    # keep 95% of them (hfkit.tasks.common.counted), for the warning at preparation
    keeps_95: int | None = None


class Task:
    """Base class of the tasks. Subclasses set the class attributes and override the methods."""

    name: ClassVar[str]
    formats: ClassVar[tuple[str, ...]]  # data.format values; the first is the default
    recipe_class: ClassVar[type[Recipe]] = Recipe  # the schema of this task's recipes
    card_label: ClassVar[str]  # how a model card names the task ("translation")
    generates: ClassVar[bool] = True  # evaluation generates text (extractive QA picks spans instead)

    def __init__(self, recipe: Recipe, encoder_decoder: bool = False):
        self.recipe = recipe
        self.fmt = recipe.data.format or self.formats[0]
        self.encoder_decoder = encoder_decoder
        self.data_notes: list[str] = []  # what `check_data` found worth saying about the loaded data

    # The model -------------------------------------------------------------------------------
    auto_model: str = "AutoModelForCausalLM"  # transformers Auto class
    peft_task_type: str = "CAUSAL_LM"
    pipeline_tag: str = "text-generation"  # the Hub's name for what the trained model does
    new_heads: tuple[str, ...] = ()  # layers a pretrained checkpoint lacks: trained in full, not by LoRA
    group_by_length: bool = True  # batch training examples of similar length (less padding)
    packs: bool = False  # decoder-only (prompt, target) examples: data.packing applies (hfkit.tasks.packing)

    @classmethod
    def variant(cls, recipe: Recipe) -> type[Task]:
        """The class that runs this recipe (a task with modes, like QA, picks one per mode)."""
        return cls

    @classmethod
    def family_matters(cls, recipe: Recipe) -> bool:
        """Does this recipe's behaviour depend on the model family (so its config must be read)?"""
        return False

    def training_args_class(self) -> type:
        from transformers import TrainingArguments

        return TrainingArguments

    def trainer_class(self) -> type:
        from transformers import Trainer

        return Trainer

    def setup_tokenizer(self, tokenizer) -> None:
        """Adjust a freshly loaded tokenizer for this task (e.g. translation language codes)."""

    def generation_settings(self, tokenizer) -> dict[str, Any]:
        """Token ids generation needs besides the recipe's settings (e.g. forced_bos_token_id)."""
        return {}

    # The data --------------------------------------------------------------------------------
    def fields(self) -> tuple[str, ...]:
        """The columns the task reads from the data."""
        raise NotImplementedError

    def optional_fields(self) -> tuple[str, ...]:
        """Columns kept when the data has them (an example id)."""
        return ("id",)

    def text_fields(self) -> tuple[str, ...]:
        """The columns after `convert`: what cleaning filters, deduplicates and normalises."""
        return self.fields()

    def normalize_fields(self) -> tuple[str, ...]:
        """The text fields cleaning may rewrite (a QA context must stay byte for byte)."""
        return self.text_fields()

    def convert(self, ds):
        """Bring the data's layout to `text_fields` (before cleaning)."""
        return ds

    def lengths(self) -> dict[str, int | None]:
        """Token lengths the recipe sets, by key, to check against the model's maximum."""
        return {}

    def generation_tokens(self, config) -> int | None:
        """The longest prompt generation may see, in tokens, by the recipe's lengths and the model's
        `config` (None: this recipe generates nothing). Raises when the lengths leave no prompt."""
        return None

    def default_metrics(self) -> list[str]:
        return []

    def metric_names(self) -> list[str]:
        """The metrics this recipe is scored with: `eval.metrics`, else the task's defaults."""
        chosen = self.recipe.eval.metrics
        return list(chosen) if chosen is not None else self.default_metrics()

    def problems(self) -> list[str]:
        """What is wrong with the recipe for this task, one line each (checked by validate and train)."""
        return []

    # What this task's metrics compare (a MetricSpec's `references`): text with text, or SQuAD answers
    metric_kind: ClassVar[str] = "text"

    def metric_problems(self) -> list[str]:
        """Metrics that cannot score this task's predictions (a Hub metric's shape is not known; a
        name that resolves to no spec is reported by the recipe's checks)."""
        from hfkit import metrics

        chosen = [(name, metrics.find(name)) for name in self.recipe.eval.metrics or []]
        wrong = [name for name, spec in chosen if spec is not None and spec.references != self.metric_kind]
        if not wrong:
            return []
        fitting = [name for name in metrics.names() if metrics.get(name).references == self.metric_kind]
        what = "SQuAD answers ({id, answers})" if self.metric_kind == "squad" else "text"
        return [f"eval.metrics: {', '.join(wrong)} cannot score task {self.name} ({self.fmt}), whose references are "
                f"{what}; use {', '.join(fitting)}"]

    def check_data(self, splits, data) -> list[str]:
        """Look at the loaded splits (and the recipe's `data` section) before anything is tokenized:
        raise HfkitError for a recipe the data cannot be scored with; return notes to show and keep."""
        return []

    loss_key: ClassVar[str] = "eval_loss"  # the evaluation loss's name in the record and in Trainer's log

    def loss_examples(self, tokenized: Tokenized) -> int:
        """How many of a tokenized eval split's examples are in its loss."""
        return tokenized.counts.get("examples", len(tokenized.dataset))

    # Tokens ----------------------------------------------------------------------------------
    def tokenize(self, ds, tokenizer, split: str) -> Tokenized:
        """A split as model inputs with labels, for training or for the evaluation loss."""
        raise NotImplementedError

    def eval_examples(self, ds, tokenizer) -> EvalExamples | None:
        """What evaluation generates from and compares with; None when nothing is generated."""
        raise NotImplementedError

    def collator(self, tokenizer, model):
        """Batches for the evaluation loss, and for training unless the task `packs`: then
        `collator(tokenizer, model, packing_mode, boundaries)` also takes padding_free or bfd."""
        raise NotImplementedError

    # Scoring ---------------------------------------------------------------------------------
    def metric_inputs(self, answers: list[str], examples: EvalExamples, extra: dict) -> tuple[list, list]:
        """(predictions, references) in the shapes the metrics take."""
        return answers, examples.references

    def card_usage_note(self, tokenizer) -> str:
        """How to prompt the trained model (the exact format it was trained on), for the model card."""
        return ""

    def card_prompt(self, tokenizer) -> tuple[str, str] | None:
        """(wrapping, template) of the prompt the model was trained on, for the model card's usage code:
        wrapping is "chat" (the template's text as the user turn of the chat template), "messages"
        (a conversation through the chat template), "plain" (the text as it is) or "encoder" (the
        encoder's input); the template has {placeholders} for the example's fields. None: no prompt."""
        return None
