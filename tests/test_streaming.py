"""data.streaming: cleaned on the fly like the in-memory path, split by process, resumed where it stopped."""

import signal
from collections import Counter

import pytest
from support import date_rows, killed_at, record_of, run_hfkit, tiny_recipe, write_jsonl

from hfkit import job
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.streaming import DedupWindow

def messy_rows() -> list[dict]:
    rows = date_rows(30)
    rows += [dict(rows[3]), {"prompt": rows[5]["prompt"] + "   ", "completion": rows[5]["completion"]}]  # copies
    rows += [{"prompt": "nothing to say", "completion": ""}]  # empty: dropped
    rows += date_rows(2, offset=1000)  # also in the validation file: decontaminated
    return rows


@pytest.fixture()
def recipe_path(tmp_path, tiny_llama):
    path = tiny_recipe(tmp_path, tiny_llama, train_rows=30, eval_rows=6)
    write_jsonl(tmp_path / "train.jsonl", messy_rows())
    return path


def one_pass(stream) -> list[tuple]:
    """The input ids of every example of the stream's first pass; `stream.first_pass` keeps its
    cleaning counts (the stream counts a chunk as it reads it, so pass 2 has begun when it ends)."""
    found = []
    for example in stream:
        if stream.passes > 1:
            break
        found.append(tuple(example["input_ids"]))
        stream.first_pass = [dict(step) for step in stream.cleaning] + [dict(stream.counts)]
    return found


def stream_for(recipe, rank=0, world=1):
    from hfkit.streaming import train_stream

    task = job.bind(recipe)
    tokenizer = job.load_tokenizer(task, recipe.model.name_or_path)
    splits, _ = job.load_data(recipe, task)
    return train_stream(recipe, task, tokenizer, list(splits.values()), rank, world)


def test_the_stream_holds_what_the_in_memory_path_holds(recipe_path):
    memory = job.prepare(load_recipe(recipe_path), job.bind(load_recipe(recipe_path)),
                         load_recipe(recipe_path).model.name_or_path, with_train=True)
    stream = stream_for(load_recipe(recipe_path, ["data.streaming=true", "training.max_steps=5"]))
    streamed = one_pass(stream)
    assert Counter(streamed) == Counter(tuple(row["input_ids"]) for row in memory.train.dataset)
    removed = {step["step"]: step.get("removed") for step in stream.first_pass[:-1]}
    in_memory = {step["step"]: step.get("removed") for step in memory.report["cleaning"]["train"]}
    assert removed["drop_empty"] == in_memory["drop_empty"] == 1
    assert removed["dedup"] == in_memory["dedup"] == 2
    assert removed["decontaminate"] == in_memory["decontaminate"] == 2
    assert stream.first_pass[-1]["examples"] == len(streamed) == 30


def test_processes_split_the_stream_without_overlap(recipe_path):
    write_jsonl(recipe_path.parent / "train.jsonl", date_rows(31))  # all different, an odd count
    recipe = load_recipe(recipe_path, ["data.streaming=true", "training.max_steps=5"])
    whole = one_pass(stream_for(recipe))
    first, second = one_pass(stream_for(recipe, 0, 2)), one_pass(stream_for(recipe, 1, 2))
    assert not set(first) & set(second)
    assert Counter(first + second) == Counter(whole) and abs(len(first) - len(second)) <= 1


def test_streaming_recipes_say_what_they_need(recipe_path):
    with pytest.raises(HfkitError, match="data.streaming: a stream has no length, so set training.max_steps"):
        load_recipe(recipe_path, ["data.streaming=true", "training.max_steps=-1"])
    with pytest.raises(HfkitError, match="near_dedup: not available with data.streaming"):
        load_recipe(recipe_path, ["data.streaming=true", "data.clean.near_dedup=true", "training.max_steps=5"])
    from hfkit.validate import validate

    done = validate(str(recipe_path), ["data.streaming=true", "training.max_steps=5"])
    assert any("train streamed (its first 35 rows read)" in line for line in done)


def test_a_stream_without_validation_holds_out_its_first_rows(recipe_path):
    recipe = load_recipe(recipe_path, ["data.streaming=true", "training.max_steps=5", "data.validation_file=null",
                                       "data.max_eval_samples=4"])
    splits, report = job.load_data(recipe, job.bind(recipe))
    assert list(splits["validation"]["prompt"]) == [row["prompt"] for row in messy_rows()[:4]]
    assert len(one_pass(stream_for(recipe))) == 30 - 4 + 2  # the held-out rows are not trained on


def test_the_dedup_window_forgets_the_oldest_hash():
    window = DedupWindow(capacity=2)
    assert window.add("a" * 40) and window.add("b" * 40) and not window.add("a" * 40)
    assert window.add("c" * 40) and window.add("a" * 40)  # "a" had been pushed out


def test_a_streamed_run_resumes_where_the_stream_stopped(tmp_path, tiny_llama):
    # 16 rows in batches of 4: a pass is 4 steps. Killed at step 5, resumed from checkpoint-4, the
    # run replays the whole first pass and trains steps 5-7 on the second, as the unbroken run did.
    recipe = tiny_recipe(tmp_path, tiny_llama, train_rows=16, eval_rows=6)
    overrides = ["data.streaming=true", "training.max_steps=7", "training.save_strategy=steps", "training.save_steps=2",
                 "peft.dropout=0.0", "eval.baseline=false", "data.max_eval_samples=4"]
    whole = run_hfkit("train", str(recipe), *overrides, "output.name=whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    died = killed_at(5, ["train", str(recipe), *overrides, "output.name=broken"], tmp_path)
    assert died.returncode == -signal.SIGKILL, died.stderr[-3000:]
    (broken,) = (tmp_path / "runs").glob("broken-*")
    resumed = run_hfkit("train", "--resume", str(broken), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    (unbroken,) = (tmp_path / "runs").glob("whole-*")
    expected, record = record_of(unbroken), record_of(broken)
    assert record.train.resumed_from == "checkpoint-4" and record.train.steps == 7
    losses = {e["step"]: e["loss"] for e in record.log_history if "loss" in e}
    reference = {e["step"]: e["loss"] for e in expected.log_history if "loss" in e}
    assert sorted(losses) == sorted(reference) == list(range(1, 8))  # steps 1-4 from checkpoint-4's state
    for step in (5, 6, 7):
        assert losses[step] == pytest.approx(reference[step], rel=1e-5)
    assert record.final.examples == expected.final.examples == 4  # eval capped by max_eval_samples
    streamed = record.data["cleaning"]["train"][0]
    assert streamed["step"].startswith("streamed (pass 2") and streamed["rows"] == 16 * 2  # replay re-read pass 1
