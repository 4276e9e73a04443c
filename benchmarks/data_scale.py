"""Does data preparation cost the same per row at 50,000 rows as at 5,000? And does a stream's memory stay flat?

Prompt/completion rows (cached_prep.py writes them: 5k and 50k), the real SmolLM2 tokenizer. Each measurement runs
in a fresh process against its own empty-at-first `datasets` cache:
- preparation (timed from the loaded tokenizer on: load the file, clean - normalise, drop empty,
  dedup, decontaminate -, tokenise, and the length-grouped sampler's lengths), then the same again
  with everything cached; seconds and peak RSS above the process's start, per 1,000 rows;
- a streaming run (`data.streaming: true`, LoRA on SmolLM2, a few steps) over each file: peak RSS;
  and one pass of the stream without training: rows read, cleaned and tokenized per second, which
  is what resuming a stream costs per row it replays.

Keys: data_scale_cost_ratio = (preparation seconds per row at 50k) / (at 5k), target <= 1.2;
streaming_peak_rss_growth = (streaming peak RSS at 50k rows) / (at 5k), target <= 1.2.

    python benchmarks/data_scale.py [--small 5000] [--large 50000] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cached_prep import prepare_twice
from common import python, report, smollm2_folder

PREPARE = """
import resource, sys, time
from hfkit import job
from hfkit.recipe import load_recipe
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
recipe = load_recipe(sys.argv[1])
task = job.bind(recipe)
tokenizer = job.load_tokenizer(task, sys.argv[2])
start_rss = rss_mb()
started = time.perf_counter()
splits, _ = job.load_data(recipe, task)
train = task.tokenize(splits["train"], tokenizer, "train").dataset
evaluation = task.tokenize(splits["validation"], tokenizer, "validation").dataset
lengths = train.with_format("arrow")["length"].to_pylist()  # what the length-grouped sampler reads
seconds = time.perf_counter() - started
print('{"seconds": %f, "rows": %d, "rss_mb": %f, "start_rss_mb": %f}' % (seconds, len(train), rss_mb(), start_rss))
"""

STREAM = """
import json, resource, sys
from hfkit import api
record = api.train(sys.argv[1], sys.argv[2:])
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "steps": record.train.steps, "rows_read": record.data["cleaning"]["train"][0]["rows"]}))
"""

STREAM_RATE = """
import json, sys, time
from hfkit import job, streaming
from hfkit.recipe import load_recipe
recipe = load_recipe(sys.argv[1], ["data.streaming=true", "training.max_steps=1"])
task = job.bind(recipe)
tokenizer = job.load_tokenizer(task, sys.argv[2])
splits, _ = job.load_data(recipe, task)
stream = streaming.train_stream(recipe, task, tokenizer, list(splits.values()))
started, examples = time.perf_counter(), 0
for example in stream:
    if stream.passes > 1:
        break
    examples += 1
print(json.dumps({"examples": examples, "seconds": time.perf_counter() - started}))
"""

def prepare(folder: Path, model: str, rows: int) -> dict:
    """First and cached preparation of `rows` rows, and one pass of their stream, each in a fresh process."""
    data = folder / str(rows)
    data.mkdir()
    first, second = prepare_twice(data, model, rows, PREPARE)
    streamed = python(STREAM_RATE, str(data / "prep.yaml"), model, env={"HF_DATASETS_CACHE": str(data / "cache")})
    return {"rows": rows, "first_s": first["seconds"], "cached_s": second["seconds"],
            "stream_rows_per_s": streamed["examples"] / streamed["seconds"],  # what resuming a stream replays per row
            "s_per_1k_rows": 1000 * first["seconds"] / rows,
            "rss_mb_per_1k_rows": 1000 * (first["rss_mb"] - first["start_rss_mb"]) / rows,
            "peak_rss_mb": first["rss_mb"]}


def stream(folder: Path, model: str, rows: int, steps: int) -> dict:
    """A few LoRA steps on SmolLM2 over the streamed file, in a fresh process."""
    data = folder / str(rows)
    recipe = data / "stream.yaml"
    recipe.write_text(json.dumps({
        "task": "generation", "model": {"name_or_path": model},
        "data": {"train_file": "train.jsonl", "validation_file": "validation.jsonl", "max_length": 128,
                 "streaming": True, "max_eval_samples": 4},
        "peft": {"r": 8, "target_modules": ["q_proj", "v_proj"]},
        "training": {"max_steps": steps, "per_device_train_batch_size": 4, "save_strategy": "no",
                     "logging_steps": 1000, "report_to": "none"},
        "generation": {"max_new_tokens": 4},
        "output": {"dir": str(data / "runs"), "timestamp": False},
    }))
    return python(STREAM, str(recipe), env={"HF_DATASETS_CACHE": str(data / "stream-cache")})


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=5000)
    parser.add_argument("--large", type=int, default=50000)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    model = smollm2_folder()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        small, large = prepare(folder, model, args.small), prepare(folder, model, args.large)
        small_stream, large_stream = (stream(folder, model, args.small, args.steps),
                                      stream(folder, model, args.large, args.steps))
    ratio = large["s_per_1k_rows"] / small["s_per_1k_rows"]
    growth = large_stream["peak_rss_mb"] / small_stream["peak_rss_mb"]
    result = {"benchmark": "data_scale", "small_rows": args.small, "large_rows": args.large,
              "prep_s": [round(small["first_s"], 2), round(large["first_s"], 2)],
              "prep_s_per_1k_rows": [round(small["s_per_1k_rows"], 3), round(large["s_per_1k_rows"], 3)],
              "prep_rss_mb_per_1k_rows": [round(small["rss_mb_per_1k_rows"], 2), round(large["rss_mb_per_1k_rows"], 2)],
              "cached_fraction": [round(small["cached_s"] / small["first_s"], 3),
                                  round(large["cached_s"] / large["first_s"], 3)],
              "streaming_peak_rss_mb": [round(small_stream["peak_rss_mb"]), round(large_stream["peak_rss_mb"])],
              "stream_prepared_rows_per_s": [round(small["stream_rows_per_s"]), round(large["stream_rows_per_s"])],
              "data_scale_cost_ratio": round(ratio, 3), "streaming_peak_rss_growth": round(growth, 3)}
    rows = [(f"{r['rows']:,} rows", round(r["first_s"], 2), round(r["s_per_1k_rows"], 3),
             round(r["rss_mb_per_1k_rows"], 2), round(r["cached_s"] / r["first_s"], 3), round(s["peak_rss_mb"]))
            for r, s in ((small, small_stream), (large, large_stream))]
    rows.append((f"{args.large:,} / {args.small:,}", "", round(ratio, 3), "", "", round(growth, 3)))
    report(result, rows, ("data", "preparation s", "s per 1k rows", "RSS MB per 1k rows", "cached / first",
                          "streaming peak RSS MB"))
    return result


if __name__ == "__main__":
    main()
