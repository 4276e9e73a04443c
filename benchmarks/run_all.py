"""`make bench`: run every benchmark, keep the JSON line each prints, and record them together.

Writes benchmarks/results/<UTC time>.json (all keys plus the machine) and rewrites the table in
benchmarks/README.md between its markers.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["eval_generation.py", "eval_generation_decoder.py", "decoder_eval_vs_batched.py", "cached_prep.py",
           "train_throughput.py", "train_vs_trl.py", "lora_memory.py", "lora_memory_8x512.py",
           "periodic_eval.py", "bootstrap_speed.py", "data_scale.py"]
TARGETS = {  # key: (comparison, target)
    "train_throughput_ratio": (">=", 1.0),
    "length_aware_tokens_ratio": (">=", 1.3),
    "eval_generation_speedup_seq2seq": (">=", 2.0),
    "eval_generation_speedup_decoder": (">=", 3.0),
    "cached_prep_fraction": ("<=", 0.10),
    "lora_vs_full_peak_rss": ("<=", 0.60),
    "train_vs_trl_default": (">=", 2.5),
    "train_vs_trl_best": (">=", 2.5),
    "cpu_mfu": (">=", 0.85),
    "lora_peak_rss_gb_8x512": ("<=", 3.0),
    "decoder_eval_vs_batched_generate": (">=", 1.5),
    # a 95% bootstrap interval (1000 resamples) costs at most this many times the metric itself
    "bootstrap_vs_metric_seconds": ("<=", 3.0),
    "data_scale_cost_ratio": ("<=", 1.2),
    "streaming_peak_rss_growth": ("<=", 1.2),
}
# Measured and shown, with no target: what a periodic evaluation adds to training; the opt-in memory
# lever (gradient checkpointing): its peak RSS at 8 x 512 and its speed relative to hfkit's default.
REPORTED = ["seconds_per_evaluation", "periodic_eval_overhead_ratio", "lora_peak_rss_gb_8x512_checkpointing",
            "checkpointing_speed_ratio"]


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def main() -> None:
    results: dict = {"utc_time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    started = time.perf_counter()
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        t0 = time.perf_counter()
        output = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True)
        print(output.stdout, flush=True)
        if output.returncode != 0:
            print(output.stderr[-3000:], file=sys.stderr)
            results[script] = {"error": output.stderr.strip().splitlines()[-1] if output.stderr.strip() else "failed"}
            continue
        line = next(line for line in reversed(output.stdout.splitlines()) if line.startswith("{"))
        results[script.removesuffix(".py")] = {**json.loads(line), "seconds": round(time.perf_counter() - t0, 1)}
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    for key in [*TARGETS, *REPORTED]:
        results[key] = next((r[key] for r in results.values() if isinstance(r, dict) and key in r), None)
    out = HERE / "results" / f"{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    table = summary_table(results)
    print(table)
    update_readme(table, results)
    print(f"wrote {out}")


def summary_table(results: dict) -> str:
    lines = ["| key | measured | target | met |", "|---|---|---|---|"]
    for key, (op, target) in TARGETS.items():
        value = results.get(key)
        met = value is not None and (value >= target if op == ">=" else value <= target)
        lines.append(f"| `{key}` | {value} | {op} {target} | {'yes' if met else 'no'} |")
    lines += [f"| `{key}` | {results.get(key)} | (measured) | |" for key in REPORTED]
    return "\n".join(lines)


def update_readme(table: str, results: dict) -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    m = results["machine"]
    block = (f"{start}\nLatest run: {results['utc_time']}, {results['total_seconds']} s in all, on {m['platform']} "
             f"({m['cpu_count']} CPUs, torch {m['torch']}, {m['threads']} threads"
             f"{', GPUs: ' + ', '.join(m['gpus']) if m['gpus'] else ', no GPU'}).\n\n{table}\n{end}")
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    readme.write_text(before + block + after)


if __name__ == "__main__":
    main()
