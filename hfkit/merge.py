"""Folding a run's LoRA adapter into its base model: one function for `hfkit merge` and `push --merge`.

The base loads in its checkpoint's own dtype (training may have used a bf16 copy of it), unless
`dtype` says otherwise; the merged folder is written beside its target and renamed into place, so
a crash never leaves half a model.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hfkit import job, models, runs
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
    base = models.load_base_model(recipe.model, task.auto_model, tokenizer, dtype=getattr(torch, dtype) if dtype else None)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(output)
    tokenizer.save_pretrained(output)
    return str(merged.dtype).removeprefix("torch.")


def merge_run(run_dir: Path, output: Path, dtype: str | None = None, overwrite: bool = False) -> str:
    """`hfkit merge`: merge into `output` atomically; a non-empty `output` needs `overwrite`."""
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise HfkitError(f"--output {output}: the folder is not empty; pass --overwrite to replace it")
    staging = runs.partial_folder(output)
    shutil.rmtree(staging, ignore_errors=True)  # left by a merge that crashed
    try:
        used = merge_into(run_dir, staging, dtype)
        runs.swap_in(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return used
