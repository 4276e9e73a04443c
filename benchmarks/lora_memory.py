"""Peak RSS of LoRA training over full fine-tuning: the real SmolLM2-135M, batch 8 x 128 tokens.

Two `hfkit train` runs in fresh processes on the same packed text (blocks of 128 tokens), the same
batch and steps; peak RSS is the process's ru_maxrss that hfkit writes into metrics.json.

    python benchmarks/lora_memory.py [--steps 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import REPO, hfkit, report, smollm2_folder


def run(folder: Path, model: str, method: str, steps: int, extra: list[str]) -> dict:
    hfkit("train", str(folder / "memory.yaml"), f"peft.method={method}", f"training.max_steps={steps}",
          f"output.name={method}", "--overwrite", *extra)
    metrics = json.loads((folder / "runs" / method / "metrics.json").read_text())
    return {"peak_rss_mb": metrics["peak_memory_mb"]["rss"], "samples_per_second": metrics["train"]["samples_per_second"]}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    model = smollm2_folder()
    briefs = [json.loads(line)["document"] for line in (REPO / "recipes/summarization/data/briefs_train.jsonl").open()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "text.txt").write_text("\n".join(briefs), encoding="utf-8")
        (folder / "memory.yaml").write_text(json.dumps({
            "task": "generation", "model": {"name_or_path": model},
            "data": {"train_file": "text.txt", "format": "text", "block_size": 128, "validation_fraction": 0.02,
                     "max_eval_samples": 8},
            "peft": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
            "training": {"per_device_train_batch_size": 8, "per_device_eval_batch_size": 8, "save_strategy": "no",
                         "logging_steps": 1000, "seed": 0},
            "output": {"dir": str(folder / "runs"), "timestamp": False},
        }))
        lora = run(folder, model, "lora", args.steps, [])
        full = run(folder, model, "none", args.steps, [])
    ratio = lora["peak_rss_mb"] / full["peak_rss_mb"]
    result = {"benchmark": "lora_memory", "model": "SmolLM2-135M-Instruct", "batch": "8 x 128 tokens",
              "lora_peak_rss_mb": lora["peak_rss_mb"], "full_peak_rss_mb": full["peak_rss_mb"],
              "lora_samples_per_second": lora["samples_per_second"],
              "full_samples_per_second": full["samples_per_second"], "lora_vs_full_peak_rss": round(ratio, 3)}
    report(result, [("LoRA r=8 (q, v)", lora["peak_rss_mb"], lora["samples_per_second"]),
                    ("full fine-tuning", full["peak_rss_mb"], full["samples_per_second"]),
                    ("ratio", round(ratio, 3), "")], ("method", "peak RSS (MB)", "samples/s"))
    return result


if __name__ == "__main__":
    main()
