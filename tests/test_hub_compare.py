"""Model cards, pushing (dry run, a local stand-in Hub, a failed push) and comparing runs."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import FakeHub
from support import record_of, tiny_recipe

from hfkit.cli import main
from hfkit.record import RunRecord

TOKEN = "hf_FakeTokenForTests1234567890"


@pytest.fixture(scope="module")
def trained_run(tiny_llama, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("run")
    recipe = tiny_recipe(folder, tiny_llama)
    assert main(["train", str(recipe), "hub.license=apache-2.0", "hub.tags=[dates]"]) == 0
    (run,) = (folder / "runs").iterdir()
    return run


def test_the_card_loads_back_and_its_model_index_is_the_final_metrics(trained_run, tmp_path):
    from huggingface_hub import ModelCard

    assert main(["push", str(trained_run), "--repo-id", "me/tiny-dates", "--dry-run", str(tmp_path / "out")]) == 0
    card = ModelCard.load(tmp_path / "out" / "README.md", ignore_metadata_errors=False)
    final = record_of(trained_run).final.metrics
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == final
    result = card.data.eval_results[0]
    assert result.task_type == "text-generation" and result.dataset_split == "validation"
    assert result.dataset_name == "train.jsonl"  # the data file as given
    data = card.data.to_dict()
    assert data["library_name"] == "peft" and data["license"] == "apache-2.0"
    assert data["tags"] == ["hfkit", "generation", "lora", "dates"] and data["model-index"][0]["name"] == "me/tiny-dates"
    assert "PeftModel.from_pretrained(base, \"me/tiny-dates\")" in card.text
    assert "| exact_match |" in card.text and "### Data cleaning" in card.text
    assert "(6 examples)" in card.text and "max_new_tokens=6" in card.text  # eval size, decoding settings
    assert "Prompt format:" in card.text and "No license is set" not in card.text
    assert "](#)" not in card.text and "github.com/hfkit" not in card.text  # no placeholder links


def test_dry_run_writes_exactly_the_upload_folder(trained_run, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("not part of the run")
    link = trained_run / "adapter" / "linked.txt"
    link.symlink_to(outside)
    try:
        assert main(["push", str(trained_run), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "out")]) == 0
    finally:
        link.unlink()
    files = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert files == ["README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
                     "metrics.json", "recipe.yaml", "tokenizer.json", "tokenizer_config.json"]
    assert str(tmp_path) not in (tmp_path / "out" / "recipe.yaml").read_text()  # local paths reduced to names
    assert main(["push", str(trained_run), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "out")]) == 2


def run_hfkit(args, endpoint):
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "hfkit", *args], env=env, capture_output=True, text=True, timeout=600)


def test_push_uploads_to_the_hub_api_with_the_token_and_writes_it_nowhere(trained_run):
    with FakeHub() as hub:
        result = run_hfkit(["push", str(trained_run), "--repo-id", "me/tiny-dates", "--private", "--revision", "v1"],
                           hub.endpoint)
    assert result.returncode == 0, result.stderr[-2000:]
    assert set(hub.files) == {"README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
                              "metrics.json", "recipe.yaml", "tokenizer.json", "tokenizer_config.json"}
    assert hub.files["adapter_model.safetensors"] == (trained_run / "adapter" / "adapter_model.safetensors").read_bytes()
    assert hub.repos[0]["visibility"] == "private" and hub.branches == ["v1"]
    authorised = [auth for method, path, auth in hub.requests if path.startswith("/api/models/")]
    assert authorised and all(auth == f"Bearer {TOKEN}" for auth in authorised)
    written = [p.read_bytes() for p in trained_run.rglob("*") if p.is_file()] + list(hub.files.values())
    assert not any(TOKEN.encode() in content for content in written)
    assert TOKEN not in result.stdout + result.stderr


def test_a_failed_push_after_training_keeps_the_run_and_says_how_to_retry(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    with FakeHub() as hub:
        endpoint = hub.endpoint
    # The server is gone: the push fails after training.
    result = run_hfkit(["train", str(recipe), "hub.push=true", "hub.repo_id=me/tiny", "eval.baseline=false"], endpoint)
    assert result.returncode == 1
    (run,) = (tmp_path / "runs").iterdir()
    assert record_of(run).status == "complete"
    assert f"hfkit push {run} --repo-id me/tiny" in result.stderr and "push to me/tiny failed" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def fake_run(root: Path, name: str, task: str, final: dict | None, baseline: dict | None = None, losses=()) -> Path:
    """A run folder written through the run record, as hfkit train writes it."""
    from hfkit.record import Evaluation, RunRecord, TrainStats

    run = root / name
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(f"task: {task}\nmodel: {{name_or_path: m}}\npeft: {{method: lora}}\n")
    if final is not None:
        RunRecord(status="complete", task=task, model="m", dataset="d.jsonl", method="lora", eval_examples=60,
                  baseline=Evaluation(metrics=baseline) if baseline else None, final=Evaluation(metrics=final),
                  train=TrainStats(steps=10, runtime_s=12.5, samples_per_second=3.2), peak_memory_mb={"rss": 1500.0},
                  parameters={"trainable": 1000, "total": 9000},
                  log_history=[{"step": s, "loss": v} for s, v in losses]).write(run)
    return run


def test_compare_tables_charts_and_report(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "a-gen", "generation", {"exact_match": 0.75}, {"exact_match": 0.25}, losses=[(1, 2.0), (2, 1.0)])
    fake_run(root, "b-tr", "translation", {"sacrebleu": 30.0, "chrf": 50.0}, {"sacrebleu": 10.0, "chrf": 40.0})
    fake_run(root, "c-broken", "generation", None)  # a run without metrics.json
    failed = fake_run(root, "d-failed", "generation", None)
    RunRecord(status="failed", error="RuntimeError: out of memory", task="generation").write(failed)
    fake_run(root, ".a-gen.new-20261201-000000", "generation", {"exact_match": 1.0})  # a replacement being staged
    assert main(["compare", str(root), "--format", "markdown", "--output", str(tmp_path / "report")]) == 0
    markdown = capsys.readouterr().out
    assert "### generation" in markdown and "### translation" in markdown
    assert ("| a-gen | complete | generation | m | lora | d.jsonl | 60 | 10 | 12.5 | 3.2 | 1500 | 1,000 | "
            "0.25 → 0.75 (+0.5) |" in markdown)
    assert ("| c-broken | no scores: no metrics.json (the run never got to scoring) | generation | m | lora "
            "|  |  |  |  |  |  |  |  |") in markdown
    assert ("| b-tr | complete | translation | m | lora | d.jsonl | 60 | 10 | 12.5 | 3.2 | 1500 | 1,000 | 10 → 30 (+20) "
            "| 40 → 50 (+10) |") in markdown

    assert "| d-failed | failed: RuntimeError: out of memory | generation | m |" in markdown
    assert ".a-gen.new" not in markdown

    rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "compare.csv").read_text())))
    assert [r["run"] for r in rows] == ["a-gen", "b-tr", "c-broken", "d-failed"]
    assert rows[0]["exact_match_delta"] == "0.5" and rows[2]["exact_match_final"] == "" and rows[1]["chrf_final"] == "50.0"
    data = json.loads((tmp_path / "report" / "compare.json").read_text())
    assert data[1]["metrics"]["sacrebleu"] == {"baseline": 10.0, "final": 30.0, "delta": 20.0}

    from PIL import Image

    for name in ("metrics_generation.png", "metrics_translation.png", "loss_curves.png"):
        with Image.open(tmp_path / "report" / name) as image:
            image.verify()
            assert image.format == "PNG"
    page = (tmp_path / "report" / "report.html").read_text()
    assert all(f"<td>{run}</td>" in page for run in ("a-gen", "b-tr", "c-broken", "d-failed"))
    assert page.count("data:image/png;base64,") == 3


def test_compare_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing-*")]) == 2
    assert "no run folder matches" in capsys.readouterr().err
