"""`hfkit train` vs a plain-transformers training script, and length-aware batching vs max padding.

Same model (the real SmolLM2-135M-Instruct), same 256 prompt/completion rows of mixed length
(written here), same batch, LoRA settings (r=8 on q_proj/v_proj) and steps. Each run is its own
process; the samples/s and non-padding tokens/s are Trainer's own counts.

- plain: the usual script (tokenise, mask the prompt, DataCollatorForSeq2Seq, Trainer defaults).
- plain, padded to max length: the same, every example padded to max_length (run_clm's old way).
- hfkit: `hfkit train` with a recipe saying the same things, hfkit's defaults otherwise (batches
  grouped by length; the frozen LoRA base in bf16 where the hardware computes bf16 natively).
- hfkit, fp32: the same, base kept in fp32: length-grouped batching alone.
- hfkit, as plain: fp32 and random batches like the plain script: what hfkit itself costs.

    python benchmarks/train_throughput.py [--steps 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from common import hfkit, python, report, smollm2_folder

BATCH, MAX_LENGTH, LORA = 8, 256, {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]}

PLAIN = f"""
import json, sys
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments
folder, data, out, steps, pad_to_max = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "max"
tokenizer = AutoTokenizer.from_pretrained(folder)
def encode(batch):
    out = {{"input_ids": [], "attention_mask": [], "labels": []}}
    for prompt, completion in zip(batch["prompt"], batch["completion"]):
        p = tokenizer(prompt)["input_ids"]
        t = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids, labels = (p + t)[:{MAX_LENGTH}], ([-100] * len(p) + t)[:{MAX_LENGTH}]
        pad = {MAX_LENGTH} - len(ids) if pad_to_max else 0
        out["input_ids"].append(ids + [tokenizer.pad_token_id] * pad)
        out["attention_mask"].append([1] * len(ids) + [0] * pad)
        out["labels"].append(labels + [-100] * pad)
    return out
dataset = load_dataset("json", data_files=data, split="train")
dataset = dataset.map(encode, batched=True, remove_columns=dataset.column_names)
model = AutoModelForCausalLM.from_pretrained(folder)
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", r={LORA["r"]}, lora_alpha={LORA["alpha"]},
                                         lora_dropout=0.0, target_modules={LORA["target_modules"]}))
args = TrainingArguments(output_dir=out, max_steps=steps, per_device_train_batch_size={BATCH}, learning_rate=1e-4,
                         save_strategy="no", logging_steps=1000, report_to="none", seed=0,
                         include_num_input_tokens_seen="non_padding")
trainer = Trainer(model=model, args=args, train_dataset=dataset,
                  data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100))
metrics = trainer.train().metrics
print(json.dumps({{"samples_per_second": metrics["train_samples_per_second"],
                  "tokens_per_second": trainer.state.num_input_tokens_seen / metrics["train_runtime"]}}))
"""


def write_data(folder: Path, rows: int = 256) -> None:
    rng = random.Random(0)
    words = ("the council met on tuesday to discuss a budget for parks schools and roads while residents asked "
             "about parking fees bus lines and the library").split()
    with (folder / "train.jsonl").open("w") as f:
        for i in range(rows):
            prompt = " ".join(rng.choice(words) for _ in range(rng.randint(8, 180)))
            f.write(json.dumps({"prompt": f"Summarize: {prompt}\n", "completion": " ".join(rng.sample(words, 6))}) + "\n")
    (folder / "validation.jsonl").write_text(json.dumps({"prompt": "Summarize: the council met", "completion": "met"}) + "\n")


def hfkit_run(folder: Path, model: str, steps: int, *overrides: str) -> dict:
    recipe = folder / "bench.yaml"
    recipe.write_text(json.dumps({
        "task": "generation", "model": {"name_or_path": model},
        "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl", "max_length": MAX_LENGTH},
        "peft": {**LORA, "dropout": 0.0},
        "training": {"max_steps": steps, "per_device_train_batch_size": BATCH, "learning_rate": 1e-4,
                     "save_strategy": "no", "logging_steps": 1000, "seed": 0,
                     "include_num_input_tokens_seen": "non_padding"},
        "generation": {"max_new_tokens": 1}, "eval": {"metrics": []},
        "output": {"dir": str(folder / "runs"), "name": "bench", "timestamp": False},
    }))
    hfkit("train", str(recipe), "--overwrite", *overrides)
    train = json.loads((folder / "runs" / "bench" / "metrics.json").read_text())["train"]
    return {"samples_per_second": train["samples_per_second"], "tokens_per_second": train["tokens_per_second"]}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    model = smollm2_folder()
    runs: dict[str, list[dict]] = {"plain": [], "hfkit": [], "plain_max_padding": [], "hfkit_fp32": [],
                                   "hfkit_as_plain": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_data(tmp)
        data = str(tmp / "train.jsonl")
        for repeat in range(args.repeats):  # interleaved, so both see the same machine load
            runs["plain"].append(python(PLAIN, model, data, str(tmp / "plain"), str(args.steps), "dynamic"))
            runs["hfkit"].append(hfkit_run(tmp, model, args.steps))
        runs["plain_max_padding"].append(python(PLAIN, model, data, str(tmp / "plain"), str(args.steps), "max"))
        runs["hfkit_fp32"].append(hfkit_run(tmp, model, args.steps, "model.dtype=float32"))
        runs["hfkit_as_plain"].append(hfkit_run(tmp, model, args.steps, "model.dtype=float32",
                                                "training.train_sampling_strategy=random"))

    def median(name: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[name])

    result = {
        "benchmark": "train_throughput", "model": "SmolLM2-135M-Instruct", "batch": BATCH, "steps": args.steps,
        "lora": LORA, **{f"{name}_{key}": round(median(name, key), 3) for name in runs
                         for key in ("samples_per_second", "tokens_per_second")},
        "train_throughput_ratio": round(median("hfkit", "samples_per_second") / median("plain", "samples_per_second"), 3),
        # length-grouped batches vs padding to max length, both fp32: the batching alone
        "length_aware_tokens_ratio": round(median("hfkit_fp32", "tokens_per_second") /
                                           median("plain_max_padding", "tokens_per_second"), 3),
        # hfkit with the plain script's settings: what hfkit itself adds (1.0 = nothing)
        "hfkit_as_plain_ratio": round(median("hfkit_as_plain", "samples_per_second") /
                                      median("plain", "samples_per_second"), 3),
    }
    report(result, [(name, round(median(name, "samples_per_second"), 3), round(median(name, "tokens_per_second"), 1))
                    for name in runs], ("run", "samples/s", "non-padding tokens/s"))
    return result


if __name__ == "__main__":
    main()
