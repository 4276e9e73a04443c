"""`hfkit validate`: everything that can go wrong before training, checked without training.

Schema and task (hfkit.recipe), the model reference (models), the data files with their columns
and cleaning (data, through the job's own loader), `TrainingArguments`, and the run folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from hfkit import job, lora, models, runs
from hfkit.errors import HfkitError
from hfkit.recipe import ignored_settings, load_recipe


def _tokenized(recipe, task, splits) -> list[str]:
    """Tokenize what training tokenizes (cached: training reads it back): every evaluation example
    fits the model, and a training split that loses more than 10% of its examples says so."""
    tokenizer = job.load_tokenizer(task, job.materialize(recipe))
    train = task.tokenize(splits["train"], tokenizer, "train") if "train" in splits and not recipe.data.streaming else None
    beyond = {split: task.tokenize(splits[split], tokenizer, split).counts.get("beyond_max_length", 0)
              for split in ("validation", "test") if split in splits}
    counts = train.counts if train is not None else {}
    done = [f"tokens: {counts.get('examples', 0)} training examples, {counts.get('target_too_long', 0)} dropped "
            "(target too long)"] if train is not None else []
    done += [f"tokens: every {split} example kept ({count} past the length limit, with their whole target)"
             for split, count in beyond.items()]
    notes = job.data_notes(recipe, task, train)
    return done + [f"warning: {note}" for note in notes]


def validate(recipe_path: str, overrides: list[str], skip_hub: bool = False, overwrite: bool = False) -> Iterator[str]:
    """Run every check, yielding what was checked as it is, one line each ("warning: ..." for what
    deserves a look). Raises HfkitError on the first problem."""
    recipe = load_recipe(recipe_path, overrides, require_files=True)
    yield f"schema: task {recipe.task}, peft {recipe.peft.method}"
    for note in ignored_settings(recipe):
        yield f"warning: {note}"

    locations = models.locate_all(recipe.model)
    for location in locations:
        if location.kind == "hub" and not skip_hub:
            models.check_hub_model(location, recipe.model)
            yield f"model: {location.path} found on the Hub or in its cache"
        else:
            if location.kind == "gguf":
                models.check_gguf_file(Path(location.path))
            yield f"model: {location.kind} {location.path}" + (" (Hub not checked)" if location.kind == "hub" else "")
    model_checked = not (skip_hub and any(location.kind == "hub" for location in locations))
    if model_checked:
        models.load_config(recipe.model)  # refuses a model that needs remote code the recipe does not allow
        task = job.bind(recipe)
        config = job.check_model(recipe, task)  # lengths, and decoding against the memory there is
        lora.check_target_modules(recipe.model, recipe.peft, task.auto_model, config)
        yield f"model: {task.auto_model}, lengths, decoding memory and LoRA targets fit its config"
    else:
        task = job.bind(recipe, encoder_decoder=False)  # the family is unknown without the model's config
    job.check_hub_needs(recipe, task, training=True)

    if recipe.data.dataset and skip_hub:
        yield f"data: Hub dataset {recipe.data.dataset} (not checked)"
    else:
        splits, _ = job.load_data(recipe, task)
        sizes = ", ".join(f"{name} {len(ds)}" for name, ds in splits.items())
        if recipe.data.streaming:
            from hfkit.streaming import check_first_rows

            sizes += f", train streamed (its first {check_first_rows(recipe, task)} rows read)"
        yield (f"data: format {task.fmt}, columns {', '.join(task.fields())} present; "
               f"training data cleaned, sizes: {sizes}")
        if model_checked:
            yield from _tokenized(recipe, task, splits)
        yield from (f"warning: {note}" for note in task.data_notes)
        selection = job.selection_split(recipe)
        if selection is not None and selection != recipe.eval.split:
            if selection not in splits:
                raise HfkitError(f"eval.split: test is scored once, at the end; evaluations while training choose "
                                 f"on the {selection} split, and there is none; set data.{selection}_file")
            yield (f"selection: evaluations while training score the {selection} split "
                   f"({len(splits[selection])} examples); the {recipe.eval.split} split is scored once, at the end")

    with tempfile.TemporaryDirectory() as tmp:
        job.training_arguments(recipe, task, Path(tmp))
    yield f"training: {task.training_args_class().__name__} accepts {len(recipe.training)} keys"

    runs.check_output_dir(recipe.output.dir)
    run_dir = runs.run_dir_path(recipe.output.dir, recipe.run_name, recipe.output.timestamp)
    if not recipe.output.timestamp:
        runs.check_new_run_dir(run_dir, overwrite)
    yield f"output: {run_dir.parent / recipe.run_name}{'-<UTC time>' if recipe.output.timestamp else ''}"
