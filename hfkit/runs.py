"""The run folder: its layout, and writers that never leave a half-written file.

runs/<name>-<UTC time>/
  recipe.yaml        the fully resolved recipe
  metrics.json       task, model, dataset, baseline and final metrics, speed, memory, cleaning counts
  predictions.jsonl  input, reference, prediction for every eval example
  env.json           versions, seed, hardware, world size, command line (never a token)
  adapter/ or model/ the trained weights and the tokenizer
  checkpoint-*/      written by Trainer while training
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from hfkit.errors import HfkitError

_UMASK = os.umask(0)
os.umask(_UMASK)

RECIPE = "recipe.yaml"
METRICS = "metrics.json"
PREDICTIONS = "predictions.jsonl"
PARTIAL_PREDICTIONS = "predictions.partial.jsonl"  # streamed while generating, removed once the ordered file is written
ENV = "env.json"
ADAPTER = "adapter"
MODEL = "model"


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def create_run_dir(output_dir: str, name: str, timestamp: bool, overwrite: bool) -> Path:
    """Make `output_dir/name-<UTC time>`; refuse to reuse an existing folder unless `overwrite`."""
    root = Path(output_dir).expanduser().resolve()
    run_dir = root / (f"{name}-{utc_stamp()}" if timestamp else name)
    if run_dir.exists():
        if not overwrite:
            raise HfkitError(f"run folder already exists: {run_dir}; pass --overwrite to replace it, "
                             "or set output.name to another name")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return run_dir


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


_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{8,}")


def redact_tokens(text: str) -> str:
    """Hide anything shaped like a Hub token (hf_...) in a message."""
    return _TOKEN_LIKE.sub("hf_***", text)


def redact(arg: str) -> str:
    """Hide anything that looks like a token in a command-line argument."""
    key, sep, _ = arg.partition("=")
    if sep and "token" in key.lower():
        return f"{key}=***"
    return redact_tokens(arg)


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
        "command": [redact(a) for a in command],
        "utc_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
