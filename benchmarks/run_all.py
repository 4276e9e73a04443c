"""`make bench`: run every benchmark, keep the JSON line each prints, and record them together.

Writes benchmarks/results/<UTC time>.json (all keys plus the machine) and rewrites the table in
benchmarks/README.md between its markers. `--only SCRIPT` (repeatable) runs just those and carries
every other script's numbers over from the newest results file, each marked `carried_from`.
`--args SCRIPT="ARGS"` (repeatable) hands a script its own options, e.g. `--args train_vs_trl="--settings
hfkit,hfkit_padded,trl_default_fp32,trl_padding_free"` (without TRL's bfd packing, ~40 of its minutes).
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["eval_generation.py", "eval_generation_decoder.py", "decoder_eval_vs_batched.py", "cached_prep.py",
           "train_throughput.py", "train_vs_trl.py", "lora_memory.py", "lora_memory_8x512.py",
           "lora_dropout_memory.py", "qlora_memory.py", "memory_plan_speed.py",
           "periodic_eval.py", "bootstrap_speed.py", "data_scale.py", "language_id.py", "quality_filters.py",
           "decoding_memory.py"]
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
    "cpu_mfu_at_step_shapes": (">=", 0.6),
    "lora_peak_rss_gb_8x512": ("<=", 3.0),  # with resources.memory_gb: 3
    "planned_vs_unconstrained_speed": (">=", 0.9),
    "qlora_vs_lora_peak_rss": ("<=", 0.8),
    "decoder_eval_vs_batched_generate": (">=", 1.5),
    # a 95% bootstrap interval (1000 resamples) costs at most this many times the metric itself
    "bootstrap_vs_metric_seconds": ("<=", 3.0),
    "data_scale_cost_ratio": ("<=", 1.2),
    "streaming_peak_rss_growth": ("<=", 1.2),
}
# Measured and shown, with no target: what a periodic evaluation adds to training; the opt-in memory
# lever (gradient checkpointing): its peak RSS at 8 x 512 and its speed relative to hfkit's default;
# the language identifier's accuracy and speed; what the quality filters add to data preparation;
# how far below beam search's real memory growth the decoding estimate stays (a floor: below 1);
# the step at 8 x 512 without a plan; what the plan chose and what its probes cost; LoRA dropout
# folded vs peft's layers; QLoRA's speed relative to LoRA's.
REPORTED = ["seconds_per_evaluation", "periodic_eval_overhead_ratio", "lora_peak_rss_gb_8x512_checkpointing",
            "checkpointing_speed_ratio", "language_id_accuracy", "language_id_3_words_accuracy",
            "language_id_vs_lingua_speed", "quality_filters_rows_per_s", "quality_filters_cost_ratio",
            "decoding_estimate_vs_peak_growth", "lora_peak_rss_gb_8x512_unplanned", "plan_choice_8x512",
            "plan_probe_seconds", "lora_dropout_peak_rss_gb_peft", "lora_dropout_peak_rss_gb_folded",
            "lora_dropout_fold_speed_ratio", "qlora_vs_lora_speed", "padding_free_vs_padded_speed"]


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}


def script_name(name: str) -> str:
    return name if name.endswith(".py") else f"{name}.py"


def previous_results() -> tuple[str | None, dict]:
    """The newest earlier results file and its contents (for `--only`)."""
    files = sorted((HERE / "results").glob("*.json"))
    return (files[-1].name, json.loads(files[-1].read_text())) if files else (None, {})


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", action="append", default=[], metavar="SCRIPT", help=(
        "run only these scripts (repeatable); every other script's numbers are carried over from the newest "
        "results file, each marked with carried_from"))
    parser.add_argument("--args", action="append", default=[], metavar='SCRIPT="ARGS"',
                        help="options for one script (repeatable)")
    parsed = parser.parse_args()
    only = [script_name(name) for name in parsed.only]
    script_args = {script_name(name): shlex.split(value) for name, _, value in (a.partition("=") for a in parsed.args)}
    unknown = sorted((set(only) | set(script_args)) - set(SCRIPTS))
    if unknown:
        parser.error(f"--only/--args: no such benchmark {', '.join(unknown)}; choose from {', '.join(SCRIPTS)}")
    results: dict = {"utc_time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine()}
    if script_args:
        results["args"] = {script: " ".join(args) for script, args in script_args.items()}
    if only:
        source, earlier = previous_results()
        results["only"] = only
        for script in SCRIPTS:
            name = script.removesuffix(".py")
            if script not in only and isinstance(earlier.get(name), dict):
                results[name] = {**earlier[name], "carried_from": earlier[name].get("carried_from", source)}
    started = time.perf_counter()
    for script in only or SCRIPTS:
        print(f"== {script}", flush=True)
        t0 = time.perf_counter()
        output = subprocess.run([sys.executable, str(HERE / script), *script_args.get(script, [])],
                                capture_output=True, text=True)
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
    ran = f" (only {', '.join(results['only'])}; the other rows are carried over from earlier runs)" if results.get(
        "only") else ""
    block = (f"{start}\nLatest run: {results['utc_time']}, {results['total_seconds']} s{ran}, on {m['platform']} "
             f"({m['cpu_count']} CPUs, torch {m['torch']}, {m['threads']} threads"
             f"{', GPUs: ' + ', '.join(m['gpus']) if m['gpus'] else ', no GPU'}).\n\n{table}\n{end}")
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    readme.write_text(before + block + after)


if __name__ == "__main__":
    main()
