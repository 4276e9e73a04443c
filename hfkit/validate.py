"""`hfkit validate`: everything that can go wrong before training, checked without training.

Schema and task (hfkit.recipe), the model reference (models), the data files with their columns
and cleaning (data, through the job's own loader), `TrainingArguments`, and the run folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hfkit import job, lora, models, runs
from hfkit.recipe import load_recipe


def validate(recipe_path: str, overrides: list[str], skip_hub: bool = False, overwrite: bool = False) -> list[str]:
    """Run every check; return what was checked, one line each. Raises HfkitError on the first problem."""
    recipe = load_recipe(recipe_path, overrides)
    done = [f"schema: task {recipe.task}, peft {recipe.peft.method}"]

    locations = models.locate_all(recipe.model)
    for location in locations:
        if location.kind == "hub" and not skip_hub:
            models.check_hub_model(location, recipe.model)
            done.append(f"model: {location.path} found on the Hub or in its cache")
        else:
            if location.kind == "gguf":
                models.check_gguf_file(Path(location.path))
            done.append(f"model: {location.kind} {location.path}" + (" (Hub not checked)" if location.kind == "hub" else ""))
    model_checked = not (skip_hub and any(location.kind == "hub" for location in locations))
    if model_checked:
        config = models.load_config(recipe.model)  # refuses a model that needs remote code the recipe does not allow
        task = job.bind(recipe)
        models.check_lengths(task.lengths(), config)
        lora.check_target_modules(recipe.model, recipe.peft, task.auto_model, config)
        done.append(f"model: {task.auto_model}, lengths and LoRA targets fit its config")
    else:
        task = job.bind(recipe, encoder_decoder=False)  # the family is unknown without the model's config

    if recipe.data.dataset and skip_hub:
        done.append(f"data: Hub dataset {recipe.data.dataset} (not checked)")
    else:
        splits, _ = job.load_data(recipe, task)
        sizes = ", ".join(f"{name} {len(ds)}" for name, ds in splits.items())
        if recipe.data.streaming:
            from hfkit.streaming import check_first_rows

            sizes += f", train streamed (its first {check_first_rows(recipe, task)} rows read)"
        done.append(f"data: format {task.fmt}, columns {', '.join(task.fields())} present; "
                    f"training data cleaned, sizes: {sizes}")

    with tempfile.TemporaryDirectory() as tmp:
        job.training_arguments(recipe, task, Path(tmp))
    done.append(f"training: {task.training_args_class().__name__} accepts {len(recipe.training)} keys")

    runs.check_output_dir(recipe.output.dir)
    run_dir = runs.run_dir_path(recipe.output.dir, recipe.run_name, recipe.output.timestamp)
    if not recipe.output.timestamp:
        runs.check_new_run_dir(run_dir, overwrite)
    done.append(f"output: {run_dir.parent / recipe.run_name}{'-<UTC time>' if recipe.output.timestamp else ''}")
    return done
