"""A LoRA step as hfkit trains it, with and without one change, timed in the same process (no profiler).

Whole `train_vs_trl.py` runs spread by up to 8% from one to the next on these machines, more than
one change to the step is worth, so each change that step_profile.py pointed at is measured here
instead: the same model, the same batches, the variants alternating round by round, the median of
the rounds. The setting is train_vs_trl.py's hfkit run: SmolLM2-135M-Instruct with its frozen base in
bf16, LoRA r=8 on q_proj and v_proj through hfkit's `add_lora`, attention `hfkit_sdpa_varlen`, its
128 synthetic examples length-grouped into batches of 8 and flattened into padding-free rows, the
loss on completion positions only (hfkit's TargetOnlyLoss inputs); forward + backward per batch.

    python benchmarks/step_changes.py [--batches 6] [--rounds 5]

Changes (the one before is the step without it):
- `fused_loss`: the loss computing its gradient in the forward pass, a chunk of rows at a time
  (hfkit/fused_loss.py) against transformers' ForCausalLMLoss.
- `lora_compute_dtype`: LoRA's two matrices computing in bf16 from their fp32 weights
  (hfkit/lora_dropout.py) against computing in fp32 on an upcast input, as peft does.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import torch
from common import report, smollm2_folder

import step_blocks
import train_vs_trl


def batches(tokenizer, count: int) -> list[dict]:
    """`count` padding-free batches of 8 length-grouped examples, spread from short to long."""
    from hfkit.tasks import IGNORE
    from hfkit.tasks.packing import flatten
    from hfkit.trainer import target_positions

    return [target_positions(flatten([{"input_ids": p + c, "labels": [IGNORE] * len(p) + c} for p, c in group],
                                     boundaries=True))
            for group in step_blocks.length_groups(tokenizer, count)]


@contextlib.contextmanager
def change(model, name: str, on: bool):
    from hfkit import fused_loss
    from transformers.loss.loss_utils import ForCausalLMLoss

    base = model.get_base_model()
    if name == "fused_loss":
        original = base.loss_function
        base.loss_function = fused_loss.causal_lm_loss if on else ForCausalLMLoss
        try:
            yield
        finally:
            base.loss_function = original
    elif name == "lora_compute_dtype":
        from hfkit import lora_dropout

        original = lora_dropout.compute_dtype
        if not on:  # the step before: the adapters in their weights' dtype (fp32), as peft computes them
            lora_dropout.compute_dtype = lambda x, weight: weight.dtype
        try:
            yield
        finally:
            lora_dropout.compute_dtype = original
    else:
        raise SystemExit(f"--changes: unknown change {name!r}; known: fused_loss, lora_compute_dtype")


def step(model, batch: dict) -> None:
    model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--changes", default="fused_loss")
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfkit import varlen_attention
    from hfkit.lora import add_lora
    from hfkit.schema import PeftSection

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    lora = train_vs_trl.LORA
    model = add_lora(model, PeftSection(r=lora["r"], alpha=lora["alpha"], dropout=lora["dropout"],
                                        target_modules=lora["target_modules"]), "CAUSAL_LM")
    varlen_attention.enable(model)
    model.train()
    data = batches(tokenizer, args.batches)
    for batch in data[:2]:
        step(model, batch)  # warm-up: the allocator and oneDNN's kernels
    results, rows = {}, []
    for name in args.changes.split(","):
        seconds = {False: [], True: []}
        for round_ in range(args.rounds):
            for on in ((False, True) if round_ % 2 == 0 else (True, False)):
                with change(model, name, on):
                    started = time.perf_counter()
                    for batch in data:
                        step(model, batch)
                    seconds[on].append(time.perf_counter() - started)
                print(f"{name} round {round_ + 1} {'with' if on else 'without'}: {seconds[on][-1]:.2f} s",
                      file=sys.stderr, flush=True)
        before, after = statistics.median(seconds[False]), statistics.median(seconds[True])
        results[name] = {"seconds_without": round(before, 3), "seconds_with": round(after, 3),
                         "speedup": round(before / after, 3)}
        rows.append((name, round(before, 2), round(after, 2), round(before / after, 3)))
    result = {"benchmark": "step_changes", "model": "SmolLM2-135M-Instruct", "lora": lora, "dtype": "bfloat16",
              "batches": len(data), "tokens_per_batch": [int(b["input_ids"].numel()) for b in data],
              "rounds": args.rounds, "threads": torch.get_num_threads(), "changes": results}
    report(result, rows, ("change", "s without (all batches)", "s with", "speedup"))
    return result


if __name__ == "__main__":
    main()
