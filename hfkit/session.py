"""One job session: how `hfkit train`, `eval` and `eval --decode` (a sweep) open and end.

Open: the recipe (from a file, from a run folder's recipe.yaml, or already read) -> the task bound to
it -> the run's weights (a run scored again) -> the output folder (a new run folder, a run's
`eval-*`/`sweep-*` folder, or the run folder being resumed or completed). End: the predictions kept
(`Scores.keep`), the record written, and a staged `--overwrite` folder swapped in (`runs.promote`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hfkit import distributed, job, runs
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.record import RunRecord, has_record, read_record
from hfkit.redaction import redacted_yaml
from hfkit.schema import Recipe
from hfkit.tasks import Task


@dataclass
class Target:
    """What a verb works on."""

    path: Path | None  # the recipe file or run folder given (None: a recipe handed over in Python)
    is_run: bool  # a run folder (scored again, or resumed)
    recipe: Recipe  # with the overrides applied
    previous: RunRecord | None  # the run's record, when it has one
    task: Task
    weights: Path | None  # the run's adapter/ or model/ when it is scored again; else None


def open_target(target: str | Path | Recipe, overrides: list[str] = (), *, resume: Path | None = None,
                weights: bool = True) -> Target:
    """The opening every verb shares. `target` is a recipe file, a run folder, or a recipe already read
    (`hfkit train` reads it before torch loads, to answer path mistakes fast; `resume`: its run folder).
    `weights=False`: training, which starts from the recipe's model, not from the run's weights."""
    if isinstance(target, Recipe):
        path, recipe = resume, target
        is_run = resume is not None
    else:
        path = Path(target)
        is_run = runs.is_run_dir(path)
        recipe = load_recipe(path / runs.RECIPE if is_run else path, list(overrides))
    previous = read_record(path) if is_run and has_record(path) else None
    task = job.bind(recipe, previous.is_encoder_decoder if previous else None)
    return Target(path, is_run, recipe, previous, task, run_weights(path, recipe) if is_run and weights else None)


def run_weights(run_dir: Path, recipe: Recipe) -> Path:
    """The run's adapter/ (LoRA, QLoRA) or model/ folder, checked to hold its weights."""
    adapter, model = run_dir / runs.ADAPTER, run_dir / runs.MODEL
    if recipe.peft.adapter:
        if not adapter.is_dir():
            raise HfkitError(f"{run_dir}: the run has no {runs.ADAPTER}/ folder (did training finish? "
                             f"hfkit train --resume {run_dir} continues it)")
        if not (adapter / "adapter_model.safetensors").is_file():
            raise HfkitError(f"{adapter}: adapter_model.safetensors is missing; the adapter was not completely "
                             "saved (train again, or resume from a checkpoint)")
        return adapter
    if not model.is_dir():
        raise HfkitError(f"{run_dir}: the run has no {runs.MODEL}/ folder (did training finish?)")
    return model


def create_run_dir(recipe: Recipe, overwrite: bool) -> Path:
    """A new run folder named by the recipe: the main process creates it; every process learns its path."""
    path = None
    if distributed.is_main():
        path = str(runs.create_run_dir(runs.run_dir_path(recipe.output.dir, recipe.run_name, recipe.output.timestamp),
                                       overwrite, fresh=recipe.output.timestamp))
    return Path(distributed.broadcast(path))


def output_folder(target: Target, kind: str, overwrite: bool) -> Path:
    """Where eval or sweep (`kind`) writes: a new `kind-<UTC time>/` inside a run folder, or a run
    folder of its own, named by the recipe."""
    if target.is_run:
        fresh = runs.new_folder(target.path / f"{kind}-{runs.utc_stamp()}") if distributed.is_main() else None
        return Path(distributed.broadcast(str(fresh)))
    recipe = target.recipe
    if kind != "eval":
        recipe = recipe.model_copy(update={"output": recipe.output.model_copy(update={"name": f"{recipe.run_name}-{kind}"})})
    return create_run_dir(recipe, overwrite)


def start_output(out_dir: Path, target: Target) -> None:
    """Make the output folder once the model's files are ready; one of its own keeps the recipe it scored."""
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        if not target.is_run:
            runs.write_text(out_dir / runs.RECIPE, redacted_yaml(target.recipe))


def finish(out_dir: Path, record: RunRecord) -> Path:
    """The ending: the record written, then a staged (`--overwrite`) folder swapped in for the old one.
    Main process only; returns where the folder now is."""
    record.write(out_dir)
    return runs.promote(out_dir)
