"""Task registry: `recipe.task` -> a `Task` that knows the task's data, model class and scoring.

A task module builds one `Task` value named `TASK`; adding a task is adding a module and a line in
`_MODULES`. Task modules are imported on first use because they import transformers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

_MODULES = {
    "generation": "hfkit.tasks.causal_lm",
    "translation": "hfkit.tasks.text2text",
    "summarization": "hfkit.tasks.text2text",
    "qa": "hfkit.tasks.qa",
}


@dataclass(frozen=True)
class GenerationInputs:
    """What evaluation generates from and scores against, one entry per eval example."""

    prompts: list[list[int]]  # token ids, unpadded (empty for tasks that do not generate)
    references: list[Any]  # what the predictions are compared with
    sources: list[str]  # the human-readable input, for predictions.jsonl


@dataclass(frozen=True)
class Task:
    name: str
    formats: tuple[str, ...]  # data.format values; the first is the default
    fields: Callable[[str], tuple[str, ...]]  # format -> the columns the task reads
    text_fields: Callable[[str], tuple[str, ...]]  # format -> the columns cleaning filters and deduplicates on
    default_metrics: Callable[[Any], list[str]]  # recipe -> metric names
    auto_model: str  # transformers Auto class for the model
    peft_task_type: str  # peft TaskType name
    preprocess: Callable[..., Any]  # (dataset, tokenizer, recipe, fmt) -> tokenized dataset
    collator: Callable[..., Any]  # (tokenizer, model) -> data collator
    generation_inputs: Callable[..., GenerationInputs | None]  # (dataset, tokenizer, recipe, fmt)
    training_args_class: Callable[[], type]  # the TrainingArguments class (imported lazily)
    trainer_class: Callable[[], type]
    convert: Callable[..., Any] | None = None  # (dataset, recipe, fmt) -> dataset with text_fields, before cleaning
    for_model: Callable[..., Task] | None = None  # (recipe) -> the variant for the recipe's model family
    needs_languages: bool = False  # data.source_lang / target_lang are required
    optional_fields: tuple[str, ...] = ()  # columns kept when the data has them (e.g. an example id)
    lengths: Callable[[Any], dict[str, int | None]] = lambda recipe: {}  # recipe -> token lengths it sets, by key
    # Batch training examples of similar length by default: they vary (extractive QA's windows barely do)
    group_by_length: bool = True
    normalize_fields: tuple[str, ...] | None = None  # columns cleaning may rewrite; None: all text_fields
    # (trainer, prepared, recipe) -> (answers, loss): for tasks that do not generate (extractive QA)
    predict: Callable[..., tuple[list[str], float | None]] | None = None
    # (answers, GenerationInputs, recipe) -> (predictions, references) in the metric's own shapes
    metric_inputs: Callable[..., tuple[list, list]] | None = None

    def format_of(self, recipe) -> str:
        return recipe.data.format or self.formats[0]


def names() -> list[str]:
    return sorted(_MODULES)


def get(name: str) -> Task:
    """The registered task: formats, fields, default metrics, the TrainingArguments class."""
    module = importlib.import_module(_MODULES[name])
    return module.TASKS[name] if hasattr(module, "TASKS") else module.TASK


def for_recipe(recipe) -> Task:
    """The task as it runs for this recipe's model (text-to-text tasks differ by model family)."""
    task = get(recipe.task)
    return task.for_model(recipe) if task.for_model else task
