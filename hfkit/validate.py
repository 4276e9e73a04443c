"""`hfkit validate`: everything that can go wrong before training, checked without training.

Schema and task (recipe.py), the model reference (models.py), the data files with their columns
and cleaning (data.py), `TrainingArguments`, and the run folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hfkit import lora, models, tasks
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.train import load_data, training_arguments


def validate(recipe_path: str, overrides: list[str], skip_hub: bool = False, overwrite: bool = False) -> list[str]:
    """Run every check; return what was checked, one line each. Raises HfkitError on the first problem."""
    import datasets

    datasets.disable_progress_bars()  # the summary lines are the output here
    recipe = load_recipe(recipe_path, overrides)
    task = tasks.get(recipe.task)
    fmt = task.format_of(recipe)
    done = [f"schema: task {recipe.task}, format {fmt}, peft {recipe.peft.method}"]

    locations = models.locate_all(recipe.model)
    for location in locations:
        if location.kind == "hub" and not skip_hub:
            models.check_hub_model(location, recipe.model)
            done.append(f"model: {location.path} found on the Hub or in its cache")
        else:
            if location.kind == "gguf":
                models.check_gguf_file(Path(location.path))
            done.append(f"model: {location.kind} {location.path}" + (" (Hub not checked)" if location.kind == "hub" else ""))
    if not (skip_hub and any(location.kind == "hub" for location in locations)):
        config = models.load_config(recipe.model)  # refuses a model that needs remote code the recipe does not allow
        task = tasks.for_recipe(recipe)
        models.check_lengths(task.lengths(recipe), config)
        lora.check_target_modules(recipe.model, recipe.peft, task.auto_model, config)
        done.append(f"model: {task.auto_model}, lengths and LoRA targets fit its config")

    if recipe.data.dataset and skip_hub:
        done.append(f"data: Hub dataset {recipe.data.dataset} (not checked)")
    else:
        splits, _ = load_data(recipe, task, fmt)
        sizes = ", ".join(f"{name} {len(ds)}" for name, ds in splits.items())
        done.append(f"data: columns {', '.join(task.fields(fmt))} present; after cleaning: {sizes}")
        if recipe.eval.split not in splits:
            raise HfkitError(f"eval.split: there is no {recipe.eval.split} split; set data.{recipe.eval.split}_file")

    with tempfile.TemporaryDirectory() as tmp:
        training_arguments(recipe, task, Path(tmp))
    done.append(f"training: {task.training_args_class().__name__} accepts {len(recipe.training)} keys")

    if not recipe.output.timestamp:
        run_dir = Path(recipe.output.dir) / recipe.run_name
        if run_dir.exists() and not overwrite:
            raise HfkitError(f"run folder already exists: {run_dir}; pass --overwrite or change output.name")
    done.append(f"output: {Path(recipe.output.dir) / recipe.run_name}{'-<UTC time>' if recipe.output.timestamp else ''}")
    return done
