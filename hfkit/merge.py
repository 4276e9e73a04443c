"""Folding a run's LoRA adapter into its base model: one function for `hfkit merge` and `push --merge`.

The base loads in its checkpoint's own dtype (training may have used a bf16 copy of it), unless
`dtype` says otherwise. A QLoRA run's adapter was trained on the 4-bit NF4 base: that base is loaded
quantised as in training, dequantised into that dtype, and the adapter merged into it, so the merged
model holds the weights the run trained with (NF4-rounded), not the original checkpoint's; the
merge says so. The merged folder is written beside its target and renamed into place, so a crash
never leaves half a model. `--overwrite` only ever replaces an earlier merged model: an output that
is, holds or lies inside a run (the one being merged or any other) is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hfkit import job, models, qlora, runs
from hfkit.console import say
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.record import has_record, read_record


def adapter_of(run_dir: Path) -> Path:
    """The run's adapter folder; a clear error when there is none."""
    if not runs.is_run_dir(run_dir):
        raise HfkitError(f"{run_dir} is not a run folder (it has no {runs.RECIPE})")
    adapter = run_dir / runs.ADAPTER
    if adapter.is_dir():
        return adapter
    if (run_dir / runs.MODEL).is_dir():
        raise HfkitError(f"{run_dir} has no {runs.ADAPTER}/: it was trained with peft.method: none, "
                         f"so {run_dir / runs.MODEL} is already a full model")
    raise HfkitError(f"{run_dir} has no {runs.ADAPTER}/: training did not finish (hfkit train --resume {run_dir})")


def merge_into(run_dir: Path, output: Path, dtype: str | None = None) -> str:
    """Write the merged model and tokenizer into `output` (which must not exist); returns the dtype used."""
    import torch
    from peft import PeftModel

    adapter = adapter_of(run_dir)
    recipe = load_recipe(run_dir / runs.RECIPE)
    record = read_record(run_dir) if has_record(run_dir) else None
    task = job.bind(recipe, record.is_encoder_decoder if record else None)
    tokenizer = job.load_tokenizer(task, str(adapter))
    if recipe.peft.method == "qlora":
        own = models.load_config(recipe.model).dtype  # the checkpoint's own dtype, unless --dtype
        base = qlora.dequantized(job.load_model(recipe, task, tokenizer, train=False), getattr(torch, dtype) if dtype else own)
        say(f"QLoRA: the 4-bit NF4 base the adapter was trained on is dequantised to {str(base.dtype).removeprefix('torch.')} "
            "and the adapter merged into it: these are the weights the run trained with, not the original "
            f"checkpoint's ({recipe.model.display_name}), which differ by NF4's rounding")
    else:
        base = models.load_base_model(recipe.model, task.auto_model, tokenizer,
                                      dtype=getattr(torch, dtype) if dtype else None)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return str(merged.dtype).removeprefix("torch.")


def merge_run(run_dir: Path, output: Path, dtype: str | None = None, overwrite: bool = False) -> str:
    """`hfkit merge`: merge into `output` atomically; an earlier merged model there needs `overwrite`."""
    check_output(run_dir, output, overwrite)
    staging = runs.partial_folder(output)
    shutil.rmtree(staging, ignore_errors=True)  # left by a merge that crashed
    try:
        used = merge_into(run_dir, staging, dtype)
        runs.share_files(staging)
        runs.swap_in(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return used


# The parts of a run folder a merge must never replace (everything but an earlier merge's folder).
RUN_PARTS = (runs.ADAPTER, runs.MODEL, "tensorboard", runs.RECIPE, runs.METRICS, runs.ENV)
RUN_PART_PREFIXES = ("checkpoint-", "eval-", "sweep-", ".")


def check_output(run_dir: Path, output: Path, overwrite: bool) -> None:
    """Refuse an --output whose replacement would cost a run: the run being merged, a folder that
    holds it, one of its parts, another run or a folder of runs; `overwrite` replaces only an earlier
    merged model (a folder with a config.json)."""
    run, target = run_dir.resolve(), output.resolve()
    fix = f"give a new folder, e.g. --output {run_dir / 'merged'}"
    if target == run or run.is_relative_to(target):
        what = "is the run being merged" if target == run else f"holds the run being merged ({run_dir})"
        raise HfkitError(f"--output {output}: that folder {what}; a merge never replaces it; {fix}")
    if target.is_relative_to(run):
        part = target.relative_to(run).parts[0]
        if part in RUN_PARTS or part.startswith(RUN_PART_PREFIXES):
            raise HfkitError(f"--output {output}: {part} is part of the run {run_dir}; {fix}")
    if not output.exists():
        return
    if not output.is_dir():
        raise HfkitError(f"--output {output}: that is a file, not a folder; {fix}")
    held = next(_runs_in(output), None)
    if held is not None:
        what = "is a run folder" if held == output else f"holds the run folder {held}"
        raise HfkitError(f"--output {output}: that folder {what}; a merge never replaces runs; {fix}")
    if not any(output.iterdir()):
        return
    if not (output / "config.json").is_file():
        raise HfkitError(f"--output {output}: the folder holds files but no merged model (no config.json); "
                         f"--overwrite only replaces an earlier merge; {fix}")
    if not overwrite:
        raise HfkitError(f"--output {output}: the folder holds a merged model; pass --overwrite to replace it")


def _runs_in(folder: Path, depth: int = 2):
    """Run folders at `folder` or up to `depth` levels below it (runs/NAME/eval-*)."""
    if runs.is_run_dir(folder):
        yield folder
    if depth and folder.is_dir() and not folder.is_symlink():
        try:
            children = [child for child in folder.iterdir() if child.is_dir()]
        except OSError:
            return
        for child in children:
            yield from _runs_in(child, depth - 1)
