"""hfkit's evaluation generation vs generating one example at a time with `model.generate`.

Decoder-only model: the real SmolLM2-135M-Instruct (packaged, offline). 40 prompts of mixed
length (the generation demo's validation prompts, some behind a longer preamble), greedy, the same
`max_new_tokens`. One at a time needs no padding; hfkit sorts by length, pads on the left and
batches. Prints both times, the ratio, and how many answers are identical.

    python benchmarks/eval_generation_decoder.py [--examples 40] [--batch-size 16] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics

import torch
from common import REPO, report, smollm2_folder, timed
from transformers import AutoModelForCausalLM, AutoTokenizer

from hfkit.generation import generate
from hfkit.schema import GenerationSection

PREAMBLES = ["", "Please help me with a small task. ", "I am filling in a form that only accepts one format for "
             "dates, and I am not sure how to write the following one, so I would like your help. "]


def prompts(tokenizer, count: int) -> list[list[int]]:
    rows = [json.loads(line) for line in (REPO / "recipes/generation/data/dates_validation.jsonl").open()]
    texts = [PREAMBLES[i % len(PREAMBLES)] + rows[i % len(rows)]["input"] for i in range(count)]
    rendered = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True,
                                              tokenize=False) for t in texts]
    return tokenizer(rendered, add_special_tokens=False)["input_ids"]


def one_at_a_time(model, tokenizer, ids: list[list[int]], new_tokens: int) -> list[str]:
    answers = []
    with torch.inference_mode():
        for prompt in ids:
            output = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
            answers.append(tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True))  # as hfkit: nothing stripped
    return answers


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=16)
    args = parser.parse_args()

    folder = smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = prompts(tokenizer, args.examples)
    settings = GenerationSection(max_new_tokens=args.new_tokens)
    single_times, hfkit_times = [], []
    for _ in range(args.repeats):
        seconds, single = timed(lambda: one_at_a_time(model, tokenizer, ids, args.new_tokens))
        single_times.append(seconds)
        seconds, batched = timed(lambda: generate(model, tokenizer, ids, settings, args.batch_size, seed=0))
        hfkit_times.append(seconds)
    identical = sum(a == b for a, b in zip(single, batched))
    single_s, hfkit_s = statistics.median(single_times), statistics.median(hfkit_times)
    result = {
        "benchmark": "eval_generation_decoder", "model": "SmolLM2-135M-Instruct", "examples": args.examples,
        "prompt_tokens": [min(map(len, ids)), max(map(len, ids))], "batch_size": args.batch_size,
        "one_at_a_time_s": round(single_s, 2), "hfkit_generate_s": round(hfkit_s, 2),
        "eval_generation_speedup_decoder": round(single_s / hfkit_s, 2),
        "identical_predictions": identical, "identical_fraction": identical / args.examples,
    }
    report(result, [("model.generate, one example at a time", result["one_at_a_time_s"], args.examples),
                    ("hfkit (length-sorted, left-padded batches)", result["hfkit_generate_s"],
                     f"{identical}/{args.examples} identical")],
           ("method", "median seconds", "answers"))
    return result


if __name__ == "__main__":
    main()
