"""Which `data.packing` trains fastest here? Non-padding tokens/s of LoRA on SmolLM2-135M.

The same prompt/completion examples (prompts of 40-500 tokens, written here) trained for one epoch
in each mode, each in a fresh process, in alternating order over `--rounds` (the fastest run counts): `none` (length-grouped, padded batches), `padding_free` (a
batch as one row) and `bfd` (rows of max_length). Tokens/s counts the examples' own tokens, so a
mode gets no credit for padding. This is how `data.packing: auto` was chosen (README, Performance);
it is not part of `make bench`.

    python benchmarks/packing_speed.py [--examples 32] [--batch 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from common import python, report, smollm2_folder

TRAIN = """
import json, resource, sys, time
from pathlib import Path
from hfkit import job
from hfkit.recipe import load_recipe
recipe = load_recipe(sys.argv[1])
task = job.bind(recipe)
prepared = job.prepare(recipe, task, sys.argv[2], with_train=True)
model = job.load_model(recipe, task, prepared.tokenizer)
trainer = job.make_trainer(job.training_arguments(recipe, task, Path(sys.argv[3])), prepared, model)
tokens = sum(prepared.train.dataset["length"])
started = time.perf_counter()
trainer.train()
seconds = time.perf_counter() - started
print(json.dumps({"tokens": tokens, "seconds": seconds, "steps": trainer.state.global_step,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches".split()


def write_rows(path: Path, examples: int) -> None:
    rng = random.Random(0)
    with path.open("w") as f:
        for i in range(examples):
            prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 480)))
            f.write(json.dumps({"prompt": f"{i}: {prompt}", "completion": " ".join(rng.sample(WORDS, 8))}) + "\n")


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="rounds, in alternating order; the fastest run counts")
    args = parser.parse_args()
    model = smollm2_folder()
    measured: dict[str, dict] = {}
    modes = ["none", "padding_free", "bfd"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_rows(folder / "train.jsonl", args.examples)
        write_rows(folder / "validation.jsonl", 2)
        for mode in [m for r in range(args.rounds) for m in (modes if r % 2 == 0 else modes[::-1])]:
            recipe = folder / f"{mode}.yaml"
            recipe.write_text(json.dumps({
                "task": "generation", "model": {"name_or_path": model},
                "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl", "max_length": 512,
                         "packing": mode, "clean": {"decontaminate": False}},
                "peft": {"r": 8, "target_modules": ["q_proj", "v_proj"]},
                "training": {"num_train_epochs": 1, "per_device_train_batch_size": args.batch, "save_strategy": "no",
                             "logging_steps": 1000, "report_to": "none", "seed": 0},
            }))
            run = python(TRAIN, str(recipe), model, str(folder / mode), env={"HF_DATASETS_CACHE": str(folder / "cache")})
            if mode not in measured or run["seconds"] < measured[mode]["seconds"]:  # the machine is shared: noise only slows
                measured[mode] = run
    speed = {mode: m["tokens"] / m["seconds"] for mode, m in measured.items()}
    result = {"benchmark": "packing_speed", "examples": args.examples, "batch": args.batch,
              **{f"{mode}_tokens_per_s": round(value, 1) for mode, value in speed.items()},
              "padding_free_vs_none": round(speed["padding_free"] / speed["none"], 3),
              "bfd_vs_none": round(speed["bfd"] / speed["none"], 3)}
    report(result, [(mode, m["steps"], round(m["seconds"], 1), round(speed[mode], 1), round(m["peak_rss_mb"]))
                    for mode, m in measured.items()], ("packing", "steps", "seconds", "tokens/s", "peak RSS MB"))
    return result


if __name__ == "__main__":
    main()
