"""Peak RSS of one hfkit LoRA training step on SmolLM2-135M at batch 8 x up to 512 tokens.

One `hfkit train` run in a fresh process (hfkit's defaults: the frozen base in bf16 where the
hardware computes it natively; LoRA r=8 on q_proj and v_proj), `max_steps: 1`, batch 8, on 8
SYNTHETIC prompt/completion examples (made-up English-like text): prompts of ~300-450 tokens and
completions of ~50, so every example is close to `data.max_length: 512` (the longest is exactly
512 tokens with EOS). Peak RSS is the process's ru_maxrss, which hfkit writes to metrics.json as
`peak_memory_mb.rss`: it covers the whole process (loading, the step, the short evaluation on one
validation row), so it is the step's peak whenever the step is the peak; the memory plan's probes
are kept out of it (hfkit.memory).

Three runs:
- `lora_peak_rss_gb_8x512`: hfkit's defaults with `resources.memory_gb: 3`: the memory plan picks
  the first setting whose measured peak fits 3 GiB (as is, gradient checkpointing, micro-batches);
  `plan_choice_8x512` says which.
- `lora_peak_rss_gb_8x512_unplanned`: `resources.memory_gb: off`, the step as it is.
- `lora_peak_rss_gb_8x512_checkpointing`: `training.gradient_checkpointing: true` set by the
  recipe (it recomputes each layer's forward during backward, see `checkpointing_speed_ratio` in
  train_vs_trl.py for what that costs).

    python benchmarks/lora_memory_8x512.py [--max-length 512]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path

from common import hfkit, report, smollm2_folder

BATCH = 8
WORDS = ("the council met on tuesday to discuss a budget for parks schools and roads while residents asked about "
         "parking fees bus lines the library opening hours and a new plan for cleaner streets in the old town").split()


def text_of(rng: random.Random, tokenizer, tokens: int, template: str = "{}", add_special_tokens: bool = False) -> str:
    """`template` filled with made-up words, at most `tokens` tokens long (as tokenised on its own)."""
    words: list[str] = []

    def count() -> int:
        return len(tokenizer(template.format(" ".join(words)), add_special_tokens=add_special_tokens)["input_ids"])

    while count() < tokens:
        words.append(rng.choice(WORDS))
    while count() > tokens:
        words.pop()
    return template.format(" ".join(words))


def write_data(folder: Path, tokenizer, max_length: int) -> list[int]:
    """8 training rows: prompts of ~300-450 tokens, completions of ~50; returns their token lengths."""
    rng = random.Random(0)
    lengths, rows = [], []
    for i in range(BATCH):
        completion_tokens = 45 + i % 4 * 3
        # spread the prompts over ~300-450 tokens, the last one filling max_length exactly (with EOS)
        prompt_tokens = (max_length - 1 - completion_tokens if i == BATCH - 1
                         else min(300 + i * 22, max_length - 1 - completion_tokens))
        # no whitespace at either end: hfkit's cleaning strips it, and these counts must be hfkit's own
        prompt = text_of(rng, tokenizer, prompt_tokens, "Summarize: {}\nSummary:", add_special_tokens=True)
        completion = text_of(rng, tokenizer, completion_tokens)
        ids = tokenizer(prompt)["input_ids"] + tokenizer(completion, add_special_tokens=False)["input_ids"]
        lengths.append(len(ids) + 1)  # + EOS
        rows.append({"prompt": prompt, "completion": completion})
    (folder / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "validation.jsonl").write_text(json.dumps({"prompt": "Summarize: the council met\nSummary:",
                                                         "completion": "met"}) + "\n")
    return lengths


@contextmanager
def data_8x512(max_length: int = 512):
    """(a temporary folder holding the 8 rows, the SmolLM2 folder, the rows' token lengths)."""
    from transformers import AutoTokenizer

    model = smollm2_folder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        yield folder, model, write_data(folder, AutoTokenizer.from_pretrained(model), max_length)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()
    with data_8x512(args.max_length) as (folder, model, lengths):
        peaks = {name: peak_rss(folder, model, args.max_length, memory_gb, **training)
                 for name, memory_gb, training in (("memory_gb: 3", 3, {}), ("unplanned", "off", {}),
                                                   ("checkpointing", "off", {"gradient_checkpointing": True}))}
    metrics, plan = peaks["memory_gb: 3"], peaks["memory_gb: 3"]["memory_plan"]
    chosen = next(o for o in plan["options"] if {k: o[k] for k in plan["choice"]} == plan["choice"])
    result = {"benchmark": "lora_memory_8x512", "model": "SmolLM2-135M-Instruct", "batch": BATCH,
              "max_length": args.max_length, "example_tokens": lengths, "steps": metrics["train"]["steps"],
              "model_dtype": metrics.get("model_dtype"),
              "lora_peak_rss_gb_8x512": gigabytes(metrics),
              "plan_choice_8x512": chosen["setting"], "plan_options_8x512": plan["options"],
              "lora_peak_rss_gb_8x512_unplanned": gigabytes(peaks["unplanned"]),
              "lora_peak_rss_gb_8x512_checkpointing": gigabytes(peaks["checkpointing"])}
    report(result, [(f"hfkit LoRA r=8 (q, v), 1 step, {name}"
                     + (f" (plan: {chosen['setting']})" if name == "memory_gb: 3" else ""),
                     f"8 x {min(lengths)}-{max(lengths)}", m.get("model_dtype"), gigabytes(m))
                    for name, m in peaks.items()],
           ("run", "batch (tokens)", "frozen base", "peak RSS (GB)"))
    return result


def gigabytes(metrics: dict) -> float:
    return round(metrics["peak_memory_mb"]["rss"] / 1024, 3)


def peak_rss(folder: Path, model: str, max_length: int, memory_gb, **training) -> dict:
    """metrics.json of one fresh `hfkit train` process: 1 LoRA step at batch 8 (+ `training` keys)."""
    (folder / "memory.yaml").write_text(json.dumps({
        "task": "generation", "model": {"name_or_path": model},
        "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl", "max_length": max_length},
        "peft": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
        "training": {"max_steps": 1, "per_device_train_batch_size": BATCH, "per_device_eval_batch_size": 1,
                     "save_strategy": "no", "seed": 0, **training},
        "generation": {"max_new_tokens": 1}, "eval": {"metrics": []},
        "output": {"dir": str(folder / "runs"), "name": "memory", "timestamp": False},
        "resources": {"memory_gb": memory_gb},
    }))
    hfkit("train", str(folder / "memory.yaml"), "--overwrite")
    return json.loads((folder / "runs" / "memory" / "metrics.json").read_text())


if __name__ == "__main__":
    main()
