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
