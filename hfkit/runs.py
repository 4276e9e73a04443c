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

import atexit
import functools
import itertools
import json
import os
import platform
import re
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


def new_folder(path: Path) -> Path:
    """Create `path`, or path-2, path-3... when it exists (mkdir, so two processes never get the same
    one): two runs, evals or sweeps started in the same second get folders of their own."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for count in itertools.count(1):
            candidate = path if count == 1 else path.with_name(f"{path.name}-{count}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as err:
        raise HfkitError(f"output.dir: cannot create {path} ({err.strerror}); choose a writable output.dir") from None
    raise AssertionError("unreachable")


_LOCKS: dict[Path, int] = {}  # run folder -> the open lock file this process holds for it


def lock_run(run_dir: Path) -> None:
    """Hold `.NAME.lock` beside the run folder NAME until `release_locks` (or this process ends): a
    second hfkit writing the same run (two --overwrite runs, a resume while it still trains, an eval
    finishing it) is refused instead of silently replacing the first. flock: a killed process's lock
    goes with it."""
    import fcntl

    final = final_place(run_dir)
    if final in _LOCKS:
        return
    lock = final.with_name(f".{final.name}.lock")
    final.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise HfkitError(f"{final} is being written by another hfkit process{f' (pid {holder})' if holder else ''}; "
                             "wait for it to finish, or set output.name to another name") from None
        try:
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:  # not a file its last holder removed meanwhile
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _LOCKS[final] = fd


def release_locks() -> None:
    """Remove and unlock every run lock this process holds."""
    for final, fd in list(_LOCKS.items()):
        Path(final.with_name(f".{final.name}.lock")).unlink(missing_ok=True)
        os.close(fd)
        del _LOCKS[final]


def releasing_locks(job):
    """Decorator: the job's run locks are released when it returns or fails."""
    @functools.wraps(job)
    def run(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        finally:
            release_locks()
    return run


atexit.register(release_locks)


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
    # A probe folder made and removed, not os.access: access() says yes to root, also in /proc or on a
    # read-only mount, where mkdir then fails
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".hfkit-probe-", dir=existing))
    except PermissionError:
        raise HfkitError(f"output.dir: cannot create {root}: no permission to write in {existing}; "
                         "choose a writable output.dir") from None
    except OSError as err:
        raise HfkitError(f"output.dir: cannot create {root}: {existing} does not take new folders ({err.strerror}); "
                         "choose a writable output.dir") from None


def check_new_run_dir(path: Path, overwrite: bool) -> None:
    """An existing run folder is only ever replaced with --overwrite."""
    if path.exists() and not overwrite:
        raise HfkitError(f"run folder already exists: {path}; pass --overwrite to replace it "
                         "(once the new run has finished), or set output.name to another name")


def create_run_dir(path: Path, overwrite: bool, fresh: bool = False) -> Path:
    """Make the run folder, locked (`lock_run`) while this process writes it; returns where to write.

    `fresh` (a timestamped name): path-2, path-3... when a run started in the same second has it.
    Replacing an existing run (`overwrite`) writes the new one into a hidden sibling
    (.NAME.new-<UTC time>) that `promote` swaps in once it has finished: a new run that fails
    never costs the old one.
    """
    if fresh:
        path = new_folder(path)
        lock_run(path)
        return path
    lock_run(path)
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
    except Interrupted as stop:  # kept when it holds a checkpoint: resuming the staged folder finishes it
        note = failed_attempt(run_dir) if is_main else ""
        if not note:
            raise
        raise Interrupted(f"{stop}; {note}", stop.exit_code) from None
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


def share_files(folder: Path) -> None:
    """Give every file under `folder` the usual mode (0644 under umask 022), as write_text does: the
    weights came out 0600 while the rest of the run folder was 0644."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~_UMASK)


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
    """Peak resident memory of this process (and peak CUDA memory when a GPU is used), MiB; the
    memory plan's probes excepted (hfkit.memory)."""
    from hfkit.memory import process_peak_mb

    return process_peak_mb()


def last_complete_checkpoint(run_dir: Path) -> tuple[Path | None, list[str]]:
    """The newest checkpoint Trainer finished writing and that resuming can use, and why each newer one
    is skipped ("checkpoint-4: ...").

    Trainer writes trainer_state.json last, so a checkpoint whose state file parses is complete; it
    must also hold its weights and optimizer (Trainer resumes without an optimizer.pt silently, with a
    fresh optimizer) and readable .pt files (a truncated rng_state.pth ended in a traceback).
    """
    def step(path: Path) -> int:
        return int(path.name.rsplit("-", 1)[1])

    candidates = [p for p in run_dir.glob("checkpoint-*") if p.is_dir() and p.name.rsplit("-", 1)[1].isdigit()]
    skipped = []
    for checkpoint in sorted(candidates, key=step, reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            skipped.append(f"{checkpoint.name}: it was not completely written (no readable trainer_state.json)")
            continue
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint, skipped
        skipped.append(f"{checkpoint.name}: {problem}")
    return None, skipped


WEIGHT_NAMES = ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "model.safetensors.index.json",
                "pytorch_model.bin", "pytorch_model.bin.index.json")


def checkpoint_problem(checkpoint: Path) -> str | None:
    """What makes a complete checkpoint unusable for resuming: missing or empty weights, no optimizer
    state, a damaged .pt file (torch saves zip archives: a cut one has no central directory). None: usable.
    DeepSpeed (global_step*/) and FSDP (*_fsdp_*, optimizer_*/) keep their states in folders of their own."""
    import zipfile

    engine = [p.name for p in checkpoint.iterdir() if p.is_dir() and p.name.startswith(("global_step", "pytorch_model_fsdp",
                                                                                        "optimizer"))]
    weights = [checkpoint / name for name in WEIGHT_NAMES if (checkpoint / name).is_file()]
    if not weights and not engine:
        return "its weights are missing (no adapter_model.safetensors or model.safetensors)"
    for path in weights:
        if path.stat().st_size == 0:
            return f"{path.name} is empty"
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(path), framework="pt"):
                    pass
            except Exception as err:  # safetensors raises its own error types for a damaged header
                return f"{path.name} is damaged ({type(err).__name__})"
    optimizer = [p for p in checkpoint.glob("*optimizer*") if p.is_file() and p.suffix in (".pt", ".bin")
                 or p.name.startswith("optimizer.pt_")]
    if not optimizer and not engine:
        return "optimizer.pt is missing: resuming would start a fresh optimizer"
    for path in [*optimizer, *checkpoint.glob("scheduler.pt"), *checkpoint.glob("rng_state*.pth")]:
        if path.suffix in (".pt", ".pth"):
            try:
                zipfile.ZipFile(path).close()
            except (OSError, zipfile.BadZipFile):
                return f"{path.name} is truncated or damaged"
    return None


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
