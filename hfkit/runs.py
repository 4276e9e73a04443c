"""The run folder: its layout, and writers that never leave a half-written file.

runs/<name>-<UTC time>/
  recipe.yaml                  the fully resolved recipe
  metrics.json                 the run record (hfkit.record): baseline and final scores, speed, memory, data counts
  predictions.jsonl            id, input, reference, prediction for every eval example (final model)
  predictions_baseline.jsonl   the same for the untuned model (eval.baseline: true)
  env.json                     versions, seed, hardware, world size, command line (never a token)
  adapter/ or model/           the trained weights and the tokenizer
  checkpoint-*/                written by Trainer while training
  eval-<UTC time>/             what `hfkit eval RUN` wrote
  sweep-<UTC time>/            what `hfkit eval RUN --decode ...` wrote (hfkit.sweep)
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from hfkit.errors import HfkitError, Interrupted
from hfkit.redaction import redact_arg

_UMASK = os.umask(0)
os.umask(_UMASK)

RECIPE = "recipe.yaml"
METRICS = "metrics.json"
PREDICTIONS = "predictions.jsonl"
BASELINE_PREDICTIONS = "predictions_baseline.jsonl"
PARTIAL_PREDICTIONS = "predictions.partial.jsonl"  # streamed while generating, removed once the ordered file is written
ENV = "env.json"
ADAPTER = "adapter"
MODEL = "model"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def fresh_path(path: Path) -> Path:
    """`path`, or path-2, path-3...: two evals or sweeps of a run started in the same second get
    folders of their own."""
    candidate, count = path, 1
    while candidate.exists():
        count += 1
        candidate = path.with_name(f"{path.name}-{count}")
    return candidate


def run_dir_path(output_dir: str, name: str, timestamp: bool) -> Path:
    root = Path(output_dir).expanduser().resolve()
    return root / (f"{name}-{utc_stamp()}" if timestamp else name)


def check_output_dir(output_dir: str) -> None:
    """output.dir must be a folder hfkit can create and write in (checked before any model loads)."""
    root = Path(output_dir).expanduser().resolve()
    try:
        existing = next(p for p in (root, *root.parents) if p.exists())
        is_folder = existing.is_dir()
    except OSError as err:  # a folder on the way that may not be searched
        raise HfkitError(f"output.dir: cannot create {root} ({err.strerror}); choose a writable output.dir") from None
    if not is_folder:
        raise HfkitError(f"output.dir: cannot create {root}: {existing} is a file, not a folder; "
                         "choose another output.dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise HfkitError(f"output.dir: cannot create {root}: no permission to write in {existing}; "
                         "choose a writable output.dir")


def check_new_run_dir(path: Path, overwrite: bool) -> None:
    """An existing run folder is only ever replaced with --overwrite."""
    if path.exists() and not overwrite:
        raise HfkitError(f"run folder already exists: {path}; pass --overwrite to replace it "
                         "(once the new run has finished), or set output.name to another name")


def create_run_dir(path: Path, overwrite: bool) -> Path:
    """Make the run folder; returns where to write the run.

    Replacing an existing run (`overwrite`) writes the new one into a hidden sibling
    (.NAME.new-<UTC time>) that `promote` swaps in once it has finished: a new run that fails
    never costs the old one.
    """
    check_new_run_dir(path, overwrite)
    target = path.with_name(f".{path.name}.new-{utc_stamp()}") if path.exists() else path
    try:
        target.mkdir(parents=True)
    except OSError as err:
        raise HfkitError(f"output.dir: cannot create the run folder {target} ({err.strerror}); "
                         "choose a writable output.dir") from None
    return target


def final_place(run_dir: Path) -> Path:
    """Where a (possibly staged) run folder ends up."""
    match = re.fullmatch(r"\.(.+)\.new-\d{8}-\d{6}", run_dir.name)
    return run_dir.with_name(match.group(1)) if match else run_dir


def promote(run_dir: Path) -> Path:
    """Swap a finished staged run in place of the run it replaces; returns the final path."""
    final = final_place(run_dir)
    if final != run_dir:
        swap_in(run_dir, final)
    return final


def failed_attempt(run_dir: Path) -> str:
    """What happened to a staged run (--overwrite) that failed, for its error message.

    The run it was to replace is untouched. The attempt is removed unless it holds checkpoints or
    trained weights: those are worth keeping (`hfkit train --resume` or `hfkit eval` on it finishes
    it and then swaps it in)."""
    final = final_place(run_dir)
    if final == run_dir or not run_dir.exists():
        return ""
    if any(run_dir.glob("checkpoint-*")) or (run_dir / ADAPTER).is_dir() or (run_dir / MODEL).is_dir():
        return f"{final} is untouched; this attempt is kept in {run_dir}"
    shutil.rmtree(run_dir, ignore_errors=True)
    return f"{final} is untouched (the failed attempt was removed)"


@contextmanager
def replacing(run_dir: Path, is_main: bool):
    """A staged run that fails says where the old run and the attempt are (see `failed_attempt`)."""
    try:
        yield
    except Interrupted:
        raise  # it saved a checkpoint: resuming the staged folder finishes it
    except Exception as err:
        note = failed_attempt(run_dir) if is_main else ""
        if not note:
            raise
        if isinstance(err, HfkitError):
            raise HfkitError(f"{err}; {note}") from err
        err.add_note(note)
        raise


def partial_folder(final: Path) -> Path:
    """The hidden sibling a folder is written into before `swap_in`; a fixed name, so every process
    of a multi-process save writes into the same one."""
    return final.with_name(f".{final.name}.partial")


def swap_in(new: Path, final: Path) -> None:
    """Put the finished folder `new` at `final`: renames only, so `final` is never half-written
    (a crash between the two renames leaves the old folder at .NAME.old-<UTC time>)."""
    old = final.with_name(f".{final.name}.old-{utc_stamp()}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def is_run_dir(path: Path) -> bool:
    return path.is_dir() and (path / RECIPE).is_file()


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def peak_memory_mb() -> dict[str, float]:
    """Peak resident memory of this process (and peak CUDA memory when a GPU is used)."""
    import torch

    peak = {"rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # KiB on Linux
    if torch.cuda.is_available():
        peak["cuda"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def last_complete_checkpoint(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint Trainer finished writing, and the names of newer half-written ones.

    Trainer writes trainer_state.json last, so a checkpoint whose state file parses is complete.
    """
    def step(path: Path) -> int:
        return int(path.name.rsplit("-", 1)[1])

    candidates = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit()]
    skipped = []
    for checkpoint in sorted(candidates, key=step, reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
            return checkpoint, skipped
        except (OSError, ValueError):
            skipped.append(checkpoint.name)
    return None, skipped


def env_info(seed: int, parallel: dict[str, Any], command: list[str]) -> dict[str, Any]:
    """What produced a run: versions, hardware, parallelism and the command line (tokens redacted)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    versions = {}
    for package in ("hfkit", "torch", "transformers", "datasets", "accelerate", "peft", "evaluate", "huggingface_hub"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "versions": {"python": platform.python_version(), **versions},
        "seed": seed,
        "hardware": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        },
        **parallel,  # world_size, distributed_type, backend, devices (one per process)
        "command": [redact_arg(a) for a in command],
        "utc_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
