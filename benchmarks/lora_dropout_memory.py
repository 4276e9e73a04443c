"""LoRA dropout without peft's fp32 copies: peak RSS and step time of peft's path vs hfkit's.

SmolLM2-135M, LoRA r=8 on all linear layers with `peft.dropout: 0.05` (hfkit's default), batch 8
x up to 512 tokens (the data of lora_memory_8x512.py), `resources.memory_gb: off` (the step as
it is), 3 steps, two fresh `hfkit train` processes:
- `peft`: peft's own LoRA layers: `lora_B(lora_A(dropout(x.to(float32))))`, which keep an fp32
  copy of every LoRA layer's input and an fp32 dropout mask for the backward pass. This run
  patches `hfkit.lora_dropout.fold_dropout` to do nothing (in the child process only).
- `folded`: hfkit as it ships: dropout and lora_A as one autograd Function that keeps the bf16
  input and a seed, and regenerates the mask in the backward pass (hfkit/lora_dropout.py).
Peak RSS from metrics.json; seconds per step from benchmarks/step_timer.py over steps 2-3 (the
first is excluded). Keys: `lora_dropout_peak_rss_gb_peft`, `lora_dropout_peak_rss_gb_folded`,
`lora_dropout_fold_peak_rss_ratio` (folded / peft), `lora_dropout_fold_speed_ratio` (peft's
seconds per step / folded's: above 1 means the fold is faster).

    python benchmarks/lora_dropout_memory.py
"""

from __future__ import annotations

import argparse

from common import report, timed_steps
from lora_memory_8x512 import data_8x512

PEFT_PATH = "import hfkit.lora_dropout as folding\nfolding.fold_dropout = lambda model: 0"
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    with data_8x512() as (folder, model, lengths):
        peft = timed_steps(folder, model, "peft", LORA, args.steps, PEFT_PATH)
        folded = timed_steps(folder, model, "folded", LORA, args.steps)
    result = {"benchmark": "lora_dropout_memory", "model": "SmolLM2-135M-Instruct", "lora": LORA,
              "example_tokens": lengths,
              "lora_dropout_peak_rss_gb_peft": peft["peak_rss_gb"],
              "lora_dropout_peak_rss_gb_folded": folded["peak_rss_gb"],
              "lora_dropout_fold_peak_rss_ratio": round(folded["peak_rss_gb"] / peft["peak_rss_gb"], 3),
              "seconds_per_step_peft": peft["seconds_per_step"], "seconds_per_step_folded": folded["seconds_per_step"],
              "lora_dropout_fold_speed_ratio": round(peft["seconds_per_step"] / folded["seconds_per_step"], 3)}
    report(result, [("peft's LoRA layers (fp32 input copy + fp32 mask kept)", peft["peak_rss_gb"],
                     peft["seconds_per_step"]),
                    ("hfkit: dropout folded into lora_A, mask from a seed", folded["peak_rss_gb"],
                     folded["seconds_per_step"])],
           ("LoRA r=8 all-linear, dropout 0.05, 8 x up to 512 tokens", "peak RSS (GB)", "s/step"))
    return result


if __name__ == "__main__":
    main()
