"""hfkit: fine-tune and evaluate Hugging Face models from one recipe file.

The Python API, for notebooks and scripts (the CLI calls the same functions):

    import hfkit
    record = hfkit.train("recipes/generation/demo.yaml", overrides=["training.max_steps=20"])
    record.final.metrics, record.path            # scores, and the run folder
    hfkit.evaluate(record.path)                  # re-score a run (or a recipe's model, zero-shot)
    recipe = hfkit.load_recipe({"task": "generation", "model": {...}, "data": {...}})
"""

from __future__ import annotations

from hfkit.qlora import keep_bitsandbytes_off_the_hub

keep_bitsandbytes_off_the_hub()  # it would fetch a kernel (code) from the Hub when peft imports it

__version__ = "0.2.0"
__all__ = ["__version__", "evaluate", "load_recipe", "train"]


def load_recipe(recipe, overrides=()):
    """A validated Recipe from a YAML path, a dict or a Recipe, with `key=value` overrides applied."""
    from hfkit.api import load_recipe as load

    return load(recipe, overrides)


def train(recipe, overrides=(), overwrite: bool = False, resume=None):
    """Fine-tune; returns the run record (metrics.json as an object; `.path` is the run folder)."""
    from hfkit.api import train as run

    return run(recipe, overrides, overwrite=overwrite, resume=resume)


def evaluate(target, overrides=(), overwrite: bool = False):
    """Score a run folder, or a recipe's model zero-shot; returns the record written."""
    from hfkit.api import evaluate as run

    return run(target, overrides, overwrite=overwrite)
