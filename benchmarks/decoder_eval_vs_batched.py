"""hfkit's evaluation generation vs the batched `model.generate` loop a user writes, decoder-only.

Model: the real SmolLM2-135M-Instruct (packaged, offline), loaded once and shared by both sides,
in fp32 by default (`--dtype`; in bf16 SmolLM2's greedy decoding is not batch-invariant, so no
batching scheme can promise identical answers there). Prompts: 64 chat-templated date-format
requests of mixed length, most short, some behind a preamble of 1-6 made-up news briefs
(recipes' data), in a fixed shuffled order (like an evaluation file).

- batched loop: what a user writes without hfkit: the prompts in file order, fixed batches of
  16, the tokenizer pads on the left, `model.generate(..., do_sample=False, max_new_tokens=N)`.
- hfkit: `hfkit.generation.generate` (the call `hfkit eval` makes): length-sorted batches, padded
  on the left, later batches holding as many short prompts as fit the first batch's tokens.
Both see the same token ids, greedy decoding and `max_new_tokens`, in the same process and
dtype; the runs alternate (A B A B ...) and each side's time is the median. The answers must be
identical: the JSON reports how many are.

    python benchmarks/decoder_eval_vs_batched.py [--examples 64] [--batch-size 16] [--new-tokens 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

import torch
from common import REPO, report, smollm2_folder, timed
from transformers import AutoModelForCausalLM, AutoTokenizer


def hfkit_generate(model, tokenizer, ids: list[list[int]], new_tokens: int, batch_size: int) -> list[str]:
    """hfkit's evaluation generation. The one place this benchmark touches hfkit's API: update it here if it moves."""
    from hfkit.generation import generate
    from hfkit.schema import GenerationSection

    return generate(model, tokenizer, ids, GenerationSection(max_new_tokens=new_tokens), batch_size, seed=0)


def batched_loop(model, tokenizer, ids: list[list[int]], new_tokens: int, batch_size: int) -> list[str]:
    """The usual loop: file order, fixed batches, left padding, greedy."""
    answers = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            batch = tokenizer.pad({"input_ids": ids[start:start + batch_size]}, padding_side="left",
                                  return_tensors="pt")
            output = model.generate(**batch, max_new_tokens=new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
            answers += tokenizer.batch_decode(output[:, batch["input_ids"].shape[1]:],
                                              skip_special_tokens=True)  # as hfkit: nothing stripped
    return answers


def prompts(tokenizer, count: int) -> list[list[int]]:
    """Chat-templated prompts of mixed length: about half bare requests, the rest behind 1-6 briefs."""
    rng = random.Random(0)
    dates = [json.loads(line)["input"] for line in (REPO / "recipes/generation/data/dates_validation.jsonl").open()]
    briefs = [json.loads(line)["document"] for line in (REPO / "recipes/summarization/data/briefs_validation.jsonl").open()]
    texts = []
    for i in range(count):
        request = dates[i % len(dates)]
        preamble = rng.choice([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 6])
        notes = " ".join(rng.sample(briefs, preamble))
        texts.append(f"I copied these notes from the local paper: {notes}\nNow the task. {request}" if notes else request)
    rendered = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                              tokenize=False) for t in texts]
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = parser.parse_args()

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, args.dtype)).eval()
    ids = prompts(tokenizer, args.examples)
    loop_times, hfkit_times = [], []
    for _ in range(args.repeats):
        seconds, looped = timed(lambda: batched_loop(model, tokenizer, ids, args.new_tokens, args.batch_size))
        loop_times.append(seconds)
        seconds, ours = timed(lambda: hfkit_generate(model, tokenizer, ids, args.new_tokens, args.batch_size))
        hfkit_times.append(seconds)
    identical = sum(a == b for a, b in zip(looped, ours))
    loop_s, hfkit_s = statistics.median(loop_times), statistics.median(hfkit_times)
    lengths = sorted(map(len, ids))
    result = {
        "benchmark": "decoder_eval_vs_batched", "model": "SmolLM2-135M-Instruct", "dtype": args.dtype,
        "examples": args.examples, "prompt_tokens": {"min": lengths[0], "median": statistics.median(lengths),
                                                     "max": lengths[-1]},
        "batch_size": args.batch_size, "max_new_tokens": args.new_tokens, "repeats": args.repeats,
        "batched_generate_s": round(loop_s, 2), "hfkit_generate_s": round(hfkit_s, 2),
        "decoder_eval_vs_batched_generate": round(loop_s / hfkit_s, 2),
        "identical_predictions": identical, "identical_fraction": round(identical / args.examples, 3),
    }
    report(result, [(f"model.generate, file order, batches of {args.batch_size}, left padding",
                     result["batched_generate_s"], args.examples),
                    ("hfkit (length-sorted, token-budget batches)", result["hfkit_generate_s"],
                     f"{identical}/{args.examples} identical")],
           ("method", "median seconds", "answers"))
    return result


if __name__ == "__main__":
    main()
