"""Helpers the benchmark scripts share: the real model folder, running hfkit, and printing results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def smollm2_folder() -> str:
    """The packaged SmolLM2-135M-Instruct as a safetensors folder (converted once by hfkit)."""
    from hfkit.models import materialize
    from hfkit.schema import ModelSection

    return materialize(ModelSection(name_or_path="smollm2-135m-instruct"))


def hfkit(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the hfkit CLI in a fresh process (its own memory peak, its own imports)."""
    result = subprocess.run([sys.executable, "-m", "hfkit", *args], env={**os.environ, **OFFLINE, **(env or {})},
                            cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"hfkit {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def python(code: str, *args: str, env: dict | None = None) -> dict:
    """Run `code` in a fresh Python; it prints one JSON object on its last line, returned here."""
    result = subprocess.run([sys.executable, "-c", code, *args], env={**os.environ, **OFFLINE, **(env or {})},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def report(result: dict, rows: list[tuple], header: tuple) -> None:
    """A JSON line (what `make bench` collects), then a markdown table for people."""
    print(json.dumps(result))
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


# `python -m hfkit ...` with benchmarks/step_timer.py's per-step clock installed first, and optionally
# a patch (Python source) applied before hfkit runs: hfkit's own code is not touched.
TIMED_CHILD = """
import runpy, sys
sys.path.insert(0, {here!r})
import step_timer
step_timer.install()
{patch}
sys.argv = ["hfkit", *sys.argv[1:]]
runpy.run_module("hfkit", run_name="__main__", alter_sys=True)
"""


def hfkit_timed(*args: str, log: Path, patch: str = "") -> None:
    """Run the hfkit CLI in a fresh process with its steps clocked into `log` (step_timer.window reads it)."""
    code = TIMED_CHILD.format(here=str(Path(__file__).resolve().parent), patch=patch)
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env={**os.environ, **OFFLINE, "BENCH_STEP_LOG": str(log)})
    if result.returncode != 0:
        raise SystemExit(f"hfkit {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def recipe_file(folder: Path, name: str, model: str, peft: dict, training: dict, **sections) -> Path:
    """A generation recipe over folder/train.jsonl and folder/validation.jsonl, run into folder/runs/<name>."""
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps({
        "task": "generation", "model": {"name_or_path": model},
        "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl", "max_length": 512},
        "peft": peft, "training": {"save_strategy": "no", "seed": 0, **training},
        "generation": {"max_new_tokens": 1}, "eval": {"metrics": []},
        "output": {"dir": str(folder / "runs"), "name": name, "timestamp": False}, **sections,
    }))
    return path


def run_metrics(folder: Path, name: str) -> dict:
    return json.loads((folder / "runs" / name / "metrics.json").read_text())


def timed_steps(folder: Path, model: str, name: str, peft: dict, steps: int, patch: str = "") -> dict:
    """One fresh `hfkit train` of `steps` steps at batch 8 on folder/train.jsonl, as it is
    (`resources.memory_gb: off`): its peak RSS (GB) and seconds per step after the first."""
    import step_timer

    recipe = recipe_file(folder, name, model, peft, {"max_steps": steps, "per_device_train_batch_size": 8,
                                                     "per_device_eval_batch_size": 1},
                         resources={"memory_gb": "off"})
    log = folder / f"{name}-steps.json"
    hfkit_timed("train", str(recipe), "--overwrite", log=log, patch=patch)
    window = step_timer.window(json.loads(log.read_text()), 1, steps - 1)
    metrics = run_metrics(folder, name)
    return {"peak_rss_gb": round(metrics["peak_memory_mb"]["rss"] / 1024, 3),
            "seconds_per_step": round(window["seconds"] / (steps - 1), 2), "parameters": metrics["parameters"]}
