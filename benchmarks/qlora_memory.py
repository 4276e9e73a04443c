"""QLoRA vs LoRA on SmolLM2-135M: peak RSS and training speed, same data, same steps.

Two fresh `hfkit train` processes on the data of lora_memory_8x512.py (batch 8 x up to 512 tokens),
LoRA r=8 on all linear layers, dropout 0, `resources.memory_gb: off` (the step as it is), 3 steps:
- `lora`: hfkit's LoRA, the frozen base in bf16 (this CPU computes bf16 natively);
- `qlora`: `peft.method: qlora`, the base's linear layers in 4-bit NF4 with double quantisation
  (bitsandbytes' CPU path), the rest of the base in bf16, computing in bf16.
Peak RSS from metrics.json (the whole process: libraries, model, the steps, scoring one row);
speed from benchmarks/step_timer.py over steps 2-3 (the first is excluded). Keys:
`qlora_vs_lora_peak_rss` (QLoRA / LoRA peak RSS), `qlora_vs_lora_speed` (QLoRA / LoRA steps per
second), with each side's numbers and the weights' own size.

    python benchmarks/qlora_memory.py [--steps 3]
"""

from __future__ import annotations

import argparse

from common import report, timed_steps
from lora_memory_8x512 import data_8x512


def lora(method: str) -> dict:
    return {"method": method, "r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    with data_8x512() as (folder, model, lengths):
        plain = timed_steps(folder, model, "lora", lora("lora"), args.steps)
        qlora = timed_steps(folder, model, "qlora", lora("qlora"), args.steps)
    result = {"benchmark": "qlora_memory", "model": "SmolLM2-135M-Instruct", "example_tokens": lengths,
              "lora_peak_rss_gb": plain["peak_rss_gb"], "qlora_peak_rss_gb": qlora["peak_rss_gb"],
              "qlora_vs_lora_peak_rss": round(qlora["peak_rss_gb"] / plain["peak_rss_gb"], 3),
              "lora_seconds_per_step": plain["seconds_per_step"], "qlora_seconds_per_step": qlora["seconds_per_step"],
              "qlora_vs_lora_speed": round(plain["seconds_per_step"] / qlora["seconds_per_step"], 3)}
    report(result, [("LoRA, frozen base bf16", plain["peak_rss_gb"], plain["seconds_per_step"]),
                    ("QLoRA, linear layers NF4, the rest bf16", qlora["peak_rss_gb"], qlora["seconds_per_step"])],
           ("r=8 all-linear, 8 x up to 512 tokens", "peak RSS (GB)", "s/step"))
    return result


if __name__ == "__main__":
    main()
