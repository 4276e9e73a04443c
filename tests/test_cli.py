"""End to end through the CLI on a tiny Llama: train, read back, eval, merge, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import jsonl, record_of, tiny_recipe

from hfkit.cli import main

REPO = Path(__file__).resolve().parent.parent


def only_run(folder: Path) -> Path:
    (run,) = [p for p in (folder / "runs").iterdir() if p.is_dir()]
    return run


def test_train_writes_a_complete_run_folder_that_eval_and_merge_read_back(tiny_llama, tmp_path, capsys, monkeypatch):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "training.seed=3"]) == 0
    run = only_run(tmp_path)
    assert run.name.startswith("generation-tiny-")
    assert {"recipe.yaml", "metrics.json", "predictions.jsonl", "predictions_baseline.jsonl", "env.json",
            "adapter"} <= {p.name for p in run.iterdir()}
    assert (run / "adapter" / "adapter_model.safetensors").is_file()

    record = record_of(run)
    assert record.schema_version == 2 and record.status == "complete" and record.kind == "train"
    assert record.task == "generation" and record.method == "lora" and record.model_family == "decoder-only"
    assert record.model == str(tiny_llama) and record.dataset == "train.jsonl"
    assert set(record.baseline.metrics) == set(record.final.metrics) == {"eval_loss", "perplexity", "exact_match"}
    assert record.final.dtype == record.baseline.dtype == "float32" and record.model_dtype == "bfloat16"
    assert record.final.examples == 6 and record.final.loss_tokens > 6 and record.final.step == 3
    assert record.train.steps == 3 and record.train.samples_per_second > 0
    assert record.parameters["trainable"] < record.parameters["total"]
    assert record.peak_memory_mb["rss"] > 0
    assert record.data["cleaning"]["train"][0] == {"step": "loaded", "rows": 24}
    assert record.data["preparation"]["train"] == {"examples": 24, "prompt_truncated": 0, "target_too_long": 0}
    assert [entry["step"] for entry in record.log_history if "loss" in entry] == [1, 2, 3]

    predictions = jsonl(run / "predictions.jsonl")
    assert len(predictions) == 6 and set(predictions[0]) == {"id", "input", "reference", "prediction", "scores"}
    baseline = jsonl(run / "predictions_baseline.jsonl")
    assert [row["id"] for row in baseline] == [row["id"] for row in predictions] and len(set(r["id"] for r in baseline)) == 6
    assert record.baseline.predictions == "predictions_baseline.jsonl" and record.final.predictions == "predictions.jsonl"
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 3 and env["world_size"] == 1 and env["versions"]["transformers"].startswith("5.")
    assert "training.seed=3" in env["command"]
    resolved = (run / "recipe.yaml").read_text()
    assert "seed: 3" in resolved and str(tmp_path / "train.jsonl") in resolved
    assert "Run folder:" in capsys.readouterr().out

    # eval reads the run back and scores the trained adapter the same way (greedy)
    assert main(["eval", str(run)]) == 0
    (eval_dir,) = run.glob("eval-*")
    again = record_of(eval_dir)
    assert again.kind == "eval" and again.status == "evaluated"
    assert again.final.metrics["exact_match"] == record.final.metrics["exact_match"]
    assert again.final.metrics["eval_loss"] == pytest.approx(record.final.metrics["eval_loss"], rel=1e-6)
    assert jsonl(eval_dir / "predictions.jsonl") == predictions
    # a second eval in the same second gets a folder of its own, the first one stays as it was
    monkeypatch.setattr("hfkit.runs.utc_stamp", lambda: eval_dir.name.removeprefix("eval-"))
    assert main(["eval", str(run)]) == 0
    assert sorted(p.name for p in run.glob("eval-*")) == [eval_dir.name, eval_dir.name + "-2"]
    assert jsonl(run / (eval_dir.name + "-2") / "predictions.jsonl") == predictions

    # merge folds the adapter in; plain transformers loads the result
    capsys.readouterr()
    assert main(["merge", str(run)]) == 0
    assert "(float32 weights, the base checkpoint's dtype; --dtype changes it)" in capsys.readouterr().out
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(run / "merged")
    assert sum(p.numel() for p in merged.parameters()) == record.parameters["total"] - record.parameters["trainable"]
    assert merged.dtype.__repr__() == "torch.float32"  # the base checkpoint's dtype, not training's bf16 copy
    assert main(["merge", str(run), "--output", str(tmp_path / "merged16"), "--dtype", "bfloat16"]) == 0
    assert "(bfloat16 weights)" in capsys.readouterr().out
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "merged16").dtype.__repr__() == "torch.bfloat16"
    assert not list(tmp_path.glob(".merged16*")) and not list(run.glob(".*"))  # no staging folder left behind


def test_full_fine_tuning_saves_the_model(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "peft.method=none", "eval.baseline=false"]) == 0
    run = only_run(tmp_path)
    assert (run / "model" / "model.safetensors").is_file() and not (run / "adapter").exists()
    record = record_of(run)
    assert record.method == "none" and record.baseline is None
    assert record.parameters["trainable"] == record.parameters["total"]
    assert main(["merge", str(run)]) == 2


def test_text_format_trains_on_packed_blocks(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    (tmp_path / "corpus.txt").write_text("\n".join(f"The quick brown fox number {i} jumps." for i in range(60)))
    overrides = ["data.format=text", f"data.train_file={tmp_path / 'corpus.txt'}", "data.validation_file=null",
                 "data.validation_fraction=0.2", "data.block_size=16", "eval.metrics=[]"]
    assert main(["train", str(recipe), *overrides]) == 0
    record = record_of(only_run(tmp_path))
    assert set(record.final.metrics) == {"eval_loss", "perplexity"}
    assert record.final.metrics["perplexity"] < record.baseline.metrics["perplexity"]
    train, held_out = record.data["preparation"]["train"], record.data["preparation"]["validation"]
    assert train["blocks"] == -(-train["tokens"] // 16)  # every token packed: only the last block is short
    assert record.final.loss_tokens == held_out["tokens"] - held_out["blocks"]  # each block's first token is not predicted


def test_eval_of_a_recipe_scores_the_untrained_model(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    # scoring the training file itself trains nothing, so it is not "contaminated"
    overrides = [f"data.validation_file={tmp_path / 'train.jsonl'}", "data.max_eval_samples=6", "output.timestamp=false"]
    assert main(["eval", str(recipe), *overrides]) == 0
    record = record_of(only_run(tmp_path))
    assert record.final is None and "exact_match" in record.baseline.metrics and record.method == "zero-shot"
    assert record.baseline.examples == 6
    # --overwrite: the new scores replace the folder once written (not left in a hidden staging folder)
    assert main(["eval", str(recipe), *overrides, "data.max_eval_samples=3", "--overwrite"]) == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["generation-tiny"]
    assert record_of(only_run(tmp_path)).baseline.examples == 3


def test_an_existing_run_folder_is_kept_unless_overwrite(tiny_llama, tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["output.timestamp=false", "training.max_steps=1", "eval.baseline=false"]
    assert main(["train", str(recipe), *fixed]) == 0
    marker = tmp_path / "runs" / "generation-tiny" / "metrics.json"
    before = marker.read_text()
    assert main(["train", str(recipe), *fixed]) == 2
    assert "run folder already exists" in capsys.readouterr().err and marker.read_text() == before
    assert main(["train", str(recipe), "--overwrite", *fixed]) == 0


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").rglob("*.yaml")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_validates(recipe, capsys):
    assert main(["validate", str(recipe), "--skip-hub"]) == 0, capsys.readouterr().err
    assert "valid" in capsys.readouterr().out


def test_user_errors_exit_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: generation\nmodel: {name_or_path: m}\ndata: {train_file: t.jsonl}\npeft: {rank: 4}\n")
    result = subprocess.run([sys.executable, "-m", "hfkit", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("hfkit: error:") and "peft.rank: unknown key" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "-m", "hfkit", "train", str(bad), "training.max_steps"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "malformed override 'training.max_steps'" in result.stderr


def hfkit_cli(*args, env=None, cwd=None):
    import os

    return subprocess.run([sys.executable, "-m", "hfkit", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_version_help_examples_and_a_closed_pipe():
    from hfkit import __version__

    assert hfkit_cli("--version").stdout.strip() == f"hfkit {__version__}"
    help_text = hfkit_cli("train", "--help").stdout
    assert "example:" in help_text and "hfkit train recipes/generation/demo.yaml" in help_text
    assert "-q, --quiet" in help_text and "-v, --verbose" in help_text
    listing = subprocess.run(f"{sys.executable} -m hfkit recipes | head -n 1", shell=True, capture_output=True, text=True)
    assert listing.stdout.count("\n") == 1 and "Traceback" not in listing.stderr and "BrokenPipe" not in listing.stderr


def test_quiet_verbose_and_debug(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["training.max_steps=1", "eval.baseline=false", "output.timestamp=false"]
    quiet = hfkit_cli("-q", "train", str(recipe), *fixed)  # before the verb, as after it
    assert quiet.returncode == 0, quiet.stderr
    assert "Trainable parameters" not in quiet.stdout and "exact_match" in quiet.stdout  # results still shown
    assert "'loss'" not in quiet.stdout and "train_runtime" not in quiet.stdout  # no raw Trainer dict
    assert not quiet.stderr.strip()
    assert "pin_memory" not in quiet.stderr and "FutureWarning" not in quiet.stderr
    normal = hfkit_cli("train", str(recipe), *fixed, "--overwrite")
    assert "Trainable parameters" in normal.stdout and "Generating: 6 examples" in normal.stdout
    assert "pin_memory" not in normal.stderr and "Loading weights" not in normal.stderr
    bad = [str(recipe), "peft.r=zero"]
    assert "Traceback" not in hfkit_cli("validate", *bad).stderr
    debug = hfkit_cli("validate", *bad, env={"HFKIT_DEBUG": "1"})
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "HfkitError" in debug.stderr


def test_hf_style_flags_get_a_hint():
    result = hfkit_cli("train", "recipes/generation/demo.yaml", "--max_steps", "3", cwd=REPO)
    assert result.returncode == 2 and "training.max_steps=VALUE" in result.stderr


PATH_MISTAKE = """
import sys
from hfkit.cli import main
code = main(sys.argv[1:])
print("torch imported" if "torch" in sys.modules else "torch not imported", code)
"""


def test_path_mistakes_are_answered_before_torch_loads(tmp_path):
    """`validate` with a missing file took 8-20 s of imports before it said so."""
    from support import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", [{"prompt": "a", "completion": "b"}])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: generation\nmodel: {name_or_path: m}\ndata: {train_file: train.jsonl}\n")
    for args in (["validate", str(tmp_path / "nope.yaml")], ["validate", str(recipe), "data.validation_file=nope.jsonl"],
                 ["train", str(recipe), "data.train_file=nope.jsonl"], ["eval", str(recipe), "data.test_file=nope.jsonl"],
                 ["-q", "eval", str(tmp_path / "missing-run")]):
        result = subprocess.run([sys.executable, "-c", PATH_MISTAKE, *args], capture_output=True, text=True, cwd=tmp_path)
        assert result.stdout.strip().endswith("torch not imported 2"), (args, result.stdout, result.stderr)
        assert "nope" in result.stderr or "missing-run" in result.stderr
