"""The Python API behind `hfkit.train`, `hfkit.evaluate` and `hfkit.load_recipe`.

Same jobs as the CLI, with the recipe given as a path, a dict or a Recipe; they return the run
record. Ctrl-C handling is only installed on the main thread (a notebook's worker thread is left
alone), and nothing here exits the interpreter: mistakes raise HfkitError.
"""

from __future__ import annotations

from pathlib import Path

from hfkit import console
from hfkit.record import RunRecord
from hfkit.schema import Recipe


def load_recipe(recipe, overrides=()) -> Recipe:
    from hfkit.recipe import load_recipe as from_file
    from hfkit.recipe import recipe_from_dict

    if isinstance(recipe, Recipe):
        recipe = recipe.model_dump(mode="json")
    if isinstance(recipe, dict):
        if overrides:
            from hfkit.recipe import apply_overrides

            recipe = dict(recipe)
            apply_overrides(recipe, list(overrides))
        return recipe_from_dict(recipe)
    return from_file(Path(recipe), list(overrides))


def train(recipe, overrides=(), overwrite: bool = False, resume=None) -> RunRecord:
    from hfkit import runs
    from hfkit.training import train as run

    console.configure_output(console.level())  # the warnings and bars the CLI silences

    if resume is not None:
        from hfkit.evaluation import evaluate, scoring_left

        if scoring_left(Path(resume)):  # training finished: only its scoring is left
            run_dir, record = evaluate(str(resume), list(overrides), command=["hfkit.train(resume=...)"])
            record.path = run_dir
            return record
        recipe = Path(resume) / runs.RECIPE
    run_dir, record = run(load_recipe(recipe, overrides), overwrite=overwrite, command=["hfkit.train(...)"],
                          resume=Path(resume) if resume is not None else None)
    record.path = run_dir
    return record


def evaluate(target, overrides=(), overwrite: bool = False) -> RunRecord:
    from hfkit.evaluation import evaluate as run

    console.configure_output(console.level())

    out_dir, record = run(str(target), list(overrides), overwrite=overwrite, command=["hfkit.evaluate(...)"])
    record.path = out_dir
    return record
