"""Task registry: `recipe.task` -> the Task class that runs it (see hfkit.tasks.base).

Adding a task is a module with a Task subclass plus one line in `_BUILTIN` (or a call to
`register` from your own code). Task modules are imported on first use: they import transformers.
"""

from __future__ import annotations

import importlib

from hfkit.errors import HfkitError, suggest_value
from hfkit.tasks.base import IGNORE, EvalExamples, Task, Tokenized

__all__ = ["IGNORE", "EvalExamples", "Task", "Tokenized", "bind", "names", "register", "task_class"]

_BUILTIN = {
    "generation": "hfkit.tasks.causal_lm:GenerationTask",
    "translation": "hfkit.tasks.text2text:TranslationTask",
    "summarization": "hfkit.tasks.text2text:SummarizationTask",
    "qa": "hfkit.tasks.qa:_QA",
}
_REGISTERED: dict[str, type[Task]] = {}


def register(name: str, cls: type[Task]) -> None:
    """Make `task: NAME` in a recipe run `cls`."""
    _REGISTERED[name] = cls


def names() -> list[str]:
    return sorted({*_BUILTIN, *_REGISTERED})


def task_class(name: str) -> type[Task]:
    """The class registered for `name`; an unknown name is a recipe mistake."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise HfkitError(f"task: unknown task {name!r}{suggest_value(name, names())}")
    module, attribute = _BUILTIN[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def bind(recipe, encoder_decoder: bool | None = None) -> Task:
    """The task as it runs this recipe: its variant (QA's mode) for the recipe's model family.

    The family comes from the model's config unless given (a run folder records it)."""
    cls = task_class(recipe.task).variant(recipe)
    if encoder_decoder is None:
        if cls.family_matters(recipe):
            from hfkit.models import is_encoder_decoder

            encoder_decoder = is_encoder_decoder(recipe.model)
        else:
            encoder_decoder = False
    return cls(recipe, encoder_decoder)
