"""What an evaluation while training costs: the generation demo with and without `eval_strategy: steps`.

Two `hfkit train` runs of recipes/generation/demo.yaml (SmolLM2-135M + LoRA, 20 steps) in fresh
processes: one without evaluations, one scoring exact match by generation every 5 steps on the
first 30 validation examples (`eval.during_training_samples: 30`). Reported: seconds per
evaluation (Trainer's eval_runtime, averaged), the training time each run took, and their ratio.

    python benchmarks/periodic_eval.py [--steps 20] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import REPO, hfkit, report

DEMO = REPO / "recipes" / "generation" / "demo.yaml"


def run(out: Path, name: str, steps: int, extra: list[str]) -> dict:
    hfkit("train", str(DEMO), f"training.max_steps={steps}", "eval.baseline=false", f"output.dir={out}",
          f"output.name={name}", "output.timestamp=false", *extra)
    return json.loads((out / name / "metrics.json").read_text())


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        plain = run(out, "plain", args.steps, [])
        periodic = run(out, "periodic", args.steps, ["training.eval_strategy=steps", f"training.eval_steps={args.every}",
                                                     "eval.during_training_samples=30"])
    evals = [entry["eval_runtime"] for entry in periodic["log_history"] if "eval_runtime" in entry]
    result = {
        "evaluations": len(evals),
        "seconds_per_evaluation": round(statistics.mean(evals), 2),
        "train_seconds_without": plain["train"]["runtime_s"],
        "train_seconds_with": periodic["train"]["runtime_s"],
        "periodic_eval_overhead_ratio": round(periodic["train"]["runtime_s"] / plain["train"]["runtime_s"], 3),
        "eval_exact_match_by_step": {entry["step"]: entry["eval_exact_match"] for entry in periodic["log_history"]
                                     if "eval_exact_match" in entry},
    }
    report(result, [("evaluations", result["evaluations"]), ("seconds per evaluation (30 examples)",
                                                               result["seconds_per_evaluation"]),
                    (f"training time, {args.steps} steps, no evaluation (s)", result["train_seconds_without"]),
                    (f"training time, evaluation every {args.every} steps (s)", result["train_seconds_with"]),
                    ("ratio", result["periodic_eval_overhead_ratio"])], ("measure", "value"))
    return result


if __name__ == "__main__":
    main()
