"""The memory plan must not slow a run that fits: tokens/s with the plan at a roomy budget / without it.

`hfkit train` on train_vs_trl.py's synthetic prompt/completion data (128 pairs of 40-500 tokens),
SmolLM2-135M, LoRA r=8 (q, v), batch 8, in fresh processes, interleaved rounds:
- `unplanned`: `resources.memory_gb: off`, training exactly as before the plan existed;
- `planned`: `resources.memory_gb: auto` (the default: 85% of the free RAM), which on a machine
  with room to spare measures the step and keeps it as it is.
tokens/s: non-padding tokens of the timed steps (benchmarks/step_timer.py, the first `--warmup`
steps excluded) / their seconds, median over rounds. `planned_vs_unconstrained_speed` = planned /
unplanned. The plan's own cost, its probes before the first step, is outside the timed steps and
reported as `plan_probe_seconds` (with the plan's choice).

    python benchmarks/memory_plan_speed.py [--steps 6 --warmup 2 --repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import step_timer
from common import hfkit_timed, recipe_file, report, run_metrics, smollm2_folder
from train_vs_trl import synthetic_pairs
from train_vs_trl import write_data as write_pairs

LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
SETTINGS = {"unplanned": "off", "planned": "auto"}


def run(folder: Path, model: str, name: str, steps: int, warmup: int) -> dict:
    recipe = recipe_file(folder, name, model, LORA, {"max_steps": warmup + steps, "per_device_train_batch_size": 8},
                         resources={"memory_gb": SETTINGS[name]})
    log = folder / f"{name}-steps.json"
    hfkit_timed("train", str(recipe), "--overwrite", log=log)
    window = step_timer.window(json.loads(log.read_text()), warmup, steps)
    plan = run_metrics(folder, name).get("memory_plan") or {}
    return {"tokens_per_second": window["tokens"] / window["seconds"], "probe_seconds": plan.get("probe_seconds"),
            "choice": plan.get("choice"), "budget": plan.get("budget")}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    model = smollm2_folder()
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_pairs(folder, synthetic_pairs(AutoTokenizer.from_pretrained(model), 128, 500))
        for round_index in range(args.repeats):
            for name in (list(SETTINGS) if round_index % 2 == 0 else list(SETTINGS)[::-1]):
                runs[name].append(run(folder, model, name, args.steps, args.warmup))

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    planned, unplanned = median("planned", "tokens_per_second"), median("unplanned", "tokens_per_second")
    result = {"benchmark": "memory_plan_speed", "model": "SmolLM2-135M-Instruct", "runs": runs,
              "planned_tokens_per_second": round(planned, 1), "unplanned_tokens_per_second": round(unplanned, 1),
              "planned_vs_unconstrained_speed": round(planned / unplanned, 3),
              "plan_probe_seconds": median("planned", "probe_seconds"), "plan_choice": runs["planned"][0]["choice"]}
    report(result, [("resources.memory_gb: off", round(unplanned, 1), ""),
                    ("resources.memory_gb: auto", round(planned, 1), result["plan_probe_seconds"]),
                    ("ratio", result["planned_vs_unconstrained_speed"], "")],
           ("LoRA r=8 (q, v), batch 8", "tokens/s (timed steps)", "probe seconds"))
    return result


if __name__ == "__main__":
    main()
