"""Time of a second hfkit data preparation (everything cached) over the first.

20,000 prompt/completion rows (written here), the real SmolLM2 tokenizer; each preparation runs in
a fresh process against the same empty-at-first `datasets` cache and is timed from the loaded
tokenizer on: load the file, clean (normalise, drop empty, dedup, decontaminate), tokenise with
label masks. The second finds every step in the cache.

    python benchmarks/cached_prep.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from common import python, report, smollm2_folder

PREPARE = """
import sys, time
from hfkit import job
from hfkit.recipe import load_recipe
recipe = load_recipe(sys.argv[1])
task = job.bind(recipe)
tokenizer = job.load_tokenizer(task, sys.argv[2])
started = time.perf_counter()
splits, _ = job.load_data(recipe, task)
train = task.tokenize(splits["train"], tokenizer, "train").dataset
evaluation = task.tokenize(splits["validation"], tokenizer, "validation").dataset
seconds = time.perf_counter() - started
print('{"seconds": %f, "rows": %d}' % (seconds, len(train)))
"""


def write_data(folder: Path, rows: int) -> None:
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches".split()
    with (folder / "train.jsonl").open("w") as f:
        for i in range(rows):
            prompt = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
            f.write(json.dumps({"prompt": f"{i}: {prompt}", "completion": " ".join(rng.sample(words, 4))}) + "\n")
    with (folder / "validation.jsonl").open("w") as f:
        for i in range(50):
            f.write(json.dumps({"prompt": f"held out {i}", "completion": "answer"}) + "\n")


def prepare_twice(folder: Path, model: str, rows: int, script: str = PREPARE) -> tuple[dict, dict]:
    """Write `rows` rows and a recipe (prep.yaml) into `folder`, then run `script` on them twice in
    fresh processes: with an empty `datasets` cache, then with everything cached."""
    write_data(folder, rows)
    recipe = folder / "prep.yaml"
    recipe.write_text(f"task: generation\nmodel: {{name_or_path: {model}}}\n"
                      "data: {train_file: train.jsonl, validation_file: validation.jsonl, max_length: 128}\n")
    env = {"HF_DATASETS_CACHE": str(folder / "cache")}
    return python(script, str(recipe), model, env=env), python(script, str(recipe), model, env=env)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        first, second = prepare_twice(Path(tmp), smollm2_folder(), args.rows)
    fraction = second["seconds"] / first["seconds"]
    result = {"benchmark": "cached_prep", "rows": args.rows, "first_s": round(first["seconds"], 2),
              "second_s": round(second["seconds"], 2), "cached_prep_fraction": round(fraction, 3)}
    report(result, [("first (empty cache)", result["first_s"]), ("second (cache hit)", result["second_s"]),
                    ("fraction", result["cached_prep_fraction"])], ("preparation", "seconds"))
    return result


if __name__ == "__main__":
    main()
