"""End to end through the CLI on a tiny Llama: train, read back, eval, merge, errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import tiny_recipe

from hfkit.cli import main

REPO = Path(__file__).resolve().parent.parent


def only_run(folder: Path) -> Path:
    (run,) = [p for p in (folder / "runs").iterdir() if p.is_dir()]
    return run


def test_train_writes_a_complete_run_folder_that_eval_and_merge_read_back(tiny_llama, tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "training.seed=3"]) == 0
    run = only_run(tmp_path)
    assert run.name.startswith("generation-tiny-")
    assert {"recipe.yaml", "metrics.json", "predictions.jsonl", "env.json", "adapter"} <= {p.name for p in run.iterdir()}
    assert (run / "adapter" / "adapter_model.safetensors").is_file()

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "generation" and metrics["method"] == "lora"
    assert metrics["model"] == str(tiny_llama) and metrics["dataset"] == "train.jsonl"
    assert set(metrics["baseline"]) == set(metrics["final"]) == {"eval_loss", "perplexity", "exact_match"}
    assert metrics["train"]["steps"] == 3 and metrics["train"]["samples_per_second"] > 0
    assert metrics["parameters"]["trainable"] < metrics["parameters"]["total"]
    assert metrics["peak_memory_mb"]["rss"] > 0
    assert metrics["cleaning"]["train"][0] == {"step": "loaded", "rows": 24}
    assert [entry["step"] for entry in metrics["log_history"] if "loss" in entry] == [1, 2, 3]

    predictions = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 6 and set(predictions[0]) == {"input", "reference", "prediction"}
    env = json.loads((run / "env.json").read_text())
    assert env["seed"] == 3 and env["world_size"] == 1 and env["versions"]["transformers"].startswith("5.")
    assert "training.seed=3" in env["command"]
    resolved = (run / "recipe.yaml").read_text()
    assert "seed: 3" in resolved and str(tmp_path / "train.jsonl") in resolved
    assert "Run folder:" in capsys.readouterr().out

    # eval reads the run back and scores the trained adapter the same way (greedy)
    assert main(["eval", str(run)]) == 0
    (eval_dir,) = run.glob("eval-*")
    again = json.loads((eval_dir / "metrics.json").read_text())
    assert again["final"]["exact_match"] == metrics["final"]["exact_match"]
    assert again["final"]["eval_loss"] == pytest.approx(metrics["final"]["eval_loss"], rel=1e-5)

    # merge folds the adapter in; plain transformers loads the result
    assert main(["merge", str(run)]) == 0
    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(run / "merged")
    assert sum(p.numel() for p in merged.parameters()) == metrics["parameters"]["total"] - metrics["parameters"]["trainable"]


def test_full_fine_tuning_saves_the_model(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "peft.method=none", "eval.baseline=false"]) == 0
    run = only_run(tmp_path)
    assert (run / "model" / "model.safetensors").is_file() and not (run / "adapter").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "none" and metrics["baseline"] is None
    assert metrics["parameters"]["trainable"] == metrics["parameters"]["total"]
    assert main(["merge", str(run)]) == 2


def test_text_format_trains_on_packed_blocks(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    (tmp_path / "corpus.txt").write_text("\n".join(f"The quick brown fox number {i} jumps." for i in range(60)))
    overrides = ["data.format=text", f"data.train_file={tmp_path / 'corpus.txt'}", "data.validation_file=null",
                 "data.validation_fraction=0.2", "data.block_size=16", "eval.metrics=[]"]
    assert main(["train", str(recipe), *overrides]) == 0
    metrics = json.loads((only_run(tmp_path) / "metrics.json").read_text())
    assert set(metrics["final"]) == {"eval_loss", "perplexity"}
    assert metrics["final"]["perplexity"] < metrics["baseline"]["perplexity"]


def test_eval_of_a_recipe_scores_the_untrained_model(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["eval", str(recipe)]) == 0
    metrics = json.loads((only_run(tmp_path) / "metrics.json").read_text())
    assert metrics["final"] is None and "exact_match" in metrics["baseline"]


def test_an_existing_run_folder_is_kept_unless_overwrite(tiny_llama, tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["output.timestamp=false", "training.max_steps=1", "eval.baseline=false"]
    assert main(["train", str(recipe), *fixed]) == 0
    marker = tmp_path / "runs" / "generation-tiny" / "metrics.json"
    before = marker.read_text()
    assert main(["train", str(recipe), *fixed]) == 2
    assert "run folder already exists" in capsys.readouterr().err and marker.read_text() == before
    assert main(["train", str(recipe), "--overwrite", *fixed]) == 0


@pytest.mark.parametrize("recipe", sorted((REPO / "recipes").rglob("*.yaml")), ids=lambda p: p.name)
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
