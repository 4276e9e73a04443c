"""What each block of a LoRA step costs, measured by taking it out (wall time, no profiler).

step_profile.py's shares come from torch.profiler, whose cost per recorded operator inflates groups
made of many small operators (compiling the norms saved ~1% of the step, where the profile gave them
21%). Here the step is timed as it runs, then again with one block replaced by something that costs
nothing, on the same batches; the difference is what that block costs. The rows are not additive
exactly (a block taken out also changes what the next one reads from cache), but each is a wall-time
upper bound on what making that block free could gain.

Setting: train_vs_trl.py's (the real SmolLM2-135M-Instruct, bf16 frozen base as hfkit trains it on
this CPU, LoRA r=8 on q_proj and v_proj via peft, its synthetic en->"ro" pairs). The 128 examples are
sorted by length and cut into batches of 8 as length-grouped batching makes them; `--batches` of them,
spread over the lengths, are each timed forward + backward (the loss on the completion tokens only,
through the tied LM head on those positions, as hfkit computes it) after a warm-up, median of
`--repeats`.

    python benchmarks/step_blocks.py [--batches 4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from common import report, smollm2_folder

import train_vs_trl

VARIANTS = ["as hfkit trains", "norms free (identity)", "SiLU x up free (gate only)", "attention core free",
            "causal mask only (no padding mask)", "LoRA adapters off", "LM head + loss free"]


def length_groups(tokenizer, count: int) -> list[list[tuple[list[int], list[int]]]]:
    """`count` length-grouped batches of 8 (prompt ids, completion ids + EOS), spread from short to long."""
    rows = train_vs_trl.synthetic_pairs(tokenizer, 128, 500)
    encoded = []
    for row in rows:
        prompt = tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]
        completion = tokenizer(row["completion"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        encoded.append((prompt, completion))
    encoded.sort(key=lambda pair: len(pair[0]) + len(pair[1]))
    groups = [encoded[i:i + train_vs_trl.BATCH] for i in range(0, len(encoded), train_vs_trl.BATCH)]
    return [groups[round(i * (len(groups) - 1) / max(1, count - 1))] for i in range(count)]


def batches(tokenizer, count: int) -> list[dict]:
    """`count` length-grouped batches of 8, spread from short to long, padded as the collator pads."""
    out = []
    for group in length_groups(tokenizer, count):
        width = max(len(p) + len(c) for p, c in group)
        ids = torch.full((len(group), width), tokenizer.pad_token_id or 0)
        mask = torch.zeros_like(ids)
        target = torch.zeros_like(ids, dtype=torch.bool)
        for i, (p, c) in enumerate(group):  # right padding, as the collator pads for training
            ids[i, :len(p) + len(c)] = torch.tensor(p + c)
            mask[i, :len(p) + len(c)] = 1
            target[i, len(p) - 1:len(p) + len(c) - 1] = True  # positions whose next token is a completion token
        labels = torch.roll(ids, -1, dims=1)
        out.append({"input_ids": ids, "attention_mask": mask, "target": target, "labels": labels,
                    "tokens": int(mask.sum())})
    return out


def step(model, batch: dict, causal_only: bool = False, free_head: bool = False) -> None:
    base = model.get_base_model()
    hidden = base.model(input_ids=batch["input_ids"],
                        attention_mask=None if causal_only else batch["attention_mask"]).last_hidden_state
    picked = hidden[batch["target"]]
    if free_head:
        loss = picked.float().sum() * 0.0  # keeps the backward through the layers, skips the head
    else:
        logits = base.lm_head(picked).float()
        loss = F.cross_entropy(logits, batch["labels"][batch["target"]])
    loss.backward()
    model.zero_grad(set_to_none=True)


@contextlib.contextmanager
def variant(model, name: str):
    """Replace one block by something free for the duration."""
    from transformers.models.llama import modeling_llama as llama

    patched = []

    def patch(owner, attribute, value):
        patched.append((owner, attribute, getattr(owner, attribute)))
        setattr(owner, attribute, value)

    if name == "norms free (identity)":
        patch(llama.LlamaRMSNorm, "forward", lambda self, x: x)
    elif name == "SiLU x up free (gate only)":
        patch(llama.LlamaMLP, "forward", lambda self, x: self.down_proj(self.gate_proj(x) + self.up_proj(x)))
    elif name == "attention core free":
        def no_attention(module, query, key, value, attention_mask, **kwargs):  # the output of SDPA's shape
            groups = query.shape[1] // key.shape[1]
            return (query + value.repeat_interleave(groups, dim=1)).transpose(1, 2).contiguous(), None
        patch(llama, "eager_attention_forward", no_attention)
        patch(model.get_base_model().config, "_attn_implementation", "eager")
    try:
        if name == "LoRA adapters off":
            with model.disable_adapter():
                embeddings = model.get_base_model().model.embed_tokens
                handle = embeddings.register_forward_hook(lambda m, i, o: o.requires_grad_(True))
                try:
                    yield
                finally:
                    handle.remove()
        else:
            yield
    finally:
        for owner, attribute, value in reversed(patched):
            setattr(owner, attribute, value)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
    lora = train_vs_trl.LORA
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r=lora["r"], lora_alpha=lora["alpha"],
                                             lora_dropout=lora["dropout"], target_modules=lora["target_modules"]))
    model.train()
    data = batches(tokenizer, args.batches)
    for batch in data[:2]:
        step(model, batch)  # warm-up: the allocator and oneDNN's kernels
    seconds: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats):
        for name in (VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]):
            with variant(model, name):
                started = time.perf_counter()
                for batch in data:
                    step(model, batch, causal_only=name.startswith("causal mask"),
                         free_head=name.startswith("LM head"))
                seconds[name].append(time.perf_counter() - started)
            print(f"repeat {repeat + 1}: {name}: {seconds[name][-1]:.2f} s", file=sys.stderr, flush=True)
    whole = statistics.median(seconds[VARIANTS[0]])
    rows = []
    for name in VARIANTS:
        median = statistics.median(seconds[name])
        rows.append((name, round(median / len(data), 3), round((whole - median) / whole, 3)))
    result = {"benchmark": "step_blocks", "model": "SmolLM2-135M-Instruct", "lora": lora, "dtype": "bfloat16",
              "batches": len(data), "tokens_per_batch": [b["tokens"] for b in data],
              "padded_per_batch": [int(b["input_ids"].numel()) for b in data], "repeats": args.repeats,
              "threads": torch.get_num_threads(),
              "seconds_per_batch": {name: s for name, s, _ in rows}, "share_of_step": {name: f for name, _, f in rows}}
    report(result, rows, ("variant", "s per batch (fwd+bwd)", "share of the step it costs"))
    return result


if __name__ == "__main__":
    main()
