"""Model cards, pushing (dry run, a local stand-in Hub, a failed push) and comparing runs."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_runs import fake_run
from hub_server import FakeHub
from support import jsonl, record_of, tiny_recipe

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
    assert result.dataset_type == "json"  # what load_dataset takes, not a file name
    data = card.data.to_dict()
    assert data["library_name"] == "peft" and data["license"] == "apache-2.0"
    assert data["tags"] == ["hfkit", "generation", "lora", "dates"] and data["model-index"][0]["name"] == "me/tiny-dates"
    assert "PeftModel.from_pretrained(base, \"me/tiny-dates\")" in card.text
    assert "| exact_match |" in card.text and "### Data cleaning" in card.text
    assert "(6 examples)" in card.text and "max_new_tokens=6" in card.text  # eval size, decoding settings
    assert "Prompt format:" in card.text and "No license is set" not in card.text
    assert "](#)" not in card.text and "github.com/hfkit" not in card.text  # no placeholder links
    # usage code that runs: the prompt as trained (here plain text, a real eval input), decoding, the answer
    first = jsonl(trained_run / "predictions.jsonl")[0]["input"]
    assert f"prompt = {first!r}\ninputs = tokenizer(prompt, return_tensors=\"pt\")" in card.text
    assert "output = model.generate(**inputs, max_new_tokens=6, num_beams=1, do_sample=False)" in card.text
    assert 'tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)' in card.text
    assert "| eval_loss (lower is better) |" in card.text and "| exact_match | 0." in card.text
    assert str(trained_run.parent.parent) not in card.text  # no local paths: the base is named by its folder


def test_the_card_shows_the_chat_prompt_the_adapter_was_trained_on_and_a_missing_license(trained_run, tmp_path):
    import yaml

    from hfkit.cards import render_card

    run = tmp_path / trained_run.name
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("sweep-*", "eval-*"))
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["data"]["chat_template"] = True
    recipe["hub"]["license"] = None
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    text = str(render_card(run, repo_id="me/tiny-chat"))
    first = jsonl(run / "predictions.jsonl")[0]["input"]
    assert (f"prompt = {first!r}\nmessages = [{{\"role\": \"user\", \"content\": prompt}}]" in text
            and "tokenizer.apply_chat_template(messages, add_generation_prompt=True" in text)
    # the exact text the model reads: the chat template's rendering (tests/support.py's template)
    assert f"```text\n<|user|>{first}</s><|assistant|>\n```" in text
    assert "> **No license is set** for these weights" in text  # visible, not only a missing metadata key


def test_a_decoding_sweep_writes_one_folder_and_compare_reads_it(trained_run, tmp_path, capsys):
    decode = ["--decode", "greedy", "--decode", "beam=4", "--decode", "top_k=50"]
    assert main(["eval", str(trained_run), *decode]) == 0
    (folder,) = trained_run.glob("sweep-*")
    data = json.loads((folder / "sweep.json").read_text())
    assert data["status"] == "complete" and [s["name"] for s in data["strategies"]] == ["greedy", "beam=4", "top_k=50"]
    assert sorted(p.name for p in folder.glob("predictions-*")) == [
        "predictions-beam4.jsonl", "predictions-greedy.jsonl", "predictions-top_k50.jsonl"]
    greedy, beam, top_k = data["strategies"]
    final = record_of(trained_run).final
    assert data["loss"]["eval_loss"] == pytest.approx(final.metrics["eval_loss"], abs=1e-9)  # once, not per strategy
    assert all(set(s["metrics"]) == {"exact_match"} and "exact_match" in s["intervals"] and s["examples"] == 6
               and s["examples_per_s"] > 0 for s in data["strategies"])
    # greedy is the run's own decoding: the very predictions of its final scoring
    assert ([r["prediction"] for r in jsonl(folder / "predictions-greedy.jsonl")]
            == [r["prediction"] for r in jsonl(trained_run / "predictions.jsonl")])
    assert beam["settings"]["num_beams"] == 4 and not beam["sampled"] and beam["seed"] is None
    assert top_k["sampled"] and top_k["seed"] == 42 and top_k["settings"]["top_k"] == 50
    assert main(["eval", str(trained_run), "--decode", "top_k=50"]) == 0  # seeded: the same samples again
    (again,) = set(trained_run.glob("sweep-*")) - {folder}
    assert jsonl(again / "predictions-top_k50.jsonl") == jsonl(folder / "predictions-top_k50.jsonl")
    shutil.rmtree(again)

    capsys.readouterr()
    assert main(["compare", str(trained_run), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert f"### Decoding sweep: {trained_run.name}/{folder.name}" in text
    assert "| metric | greedy | beam=4 | top_k=50 |" in text and "| generation speed (examples/s) |" in text
    assert "sampled (seed 42): top_k 50" in text and "| eval_loss (lower is better, computed once) |" in text
    shutil.rmtree(folder)  # the push tests upload this run


def test_a_recipe_sweep_and_bad_strategies(trained_run, capsys):
    recipe = trained_run.parent.parent / "tiny.yaml"
    assert main(["eval", str(recipe), "generation.sweep=[greedy, beam=2]"]) == 0
    (folder,) = (trained_run.parent).glob("generation-tiny-sweep-*")
    data = json.loads((folder / "sweep.json").read_text())
    assert data["method"] == "zero-shot" and [s["name"] for s in data["strategies"]] == ["greedy", "beam=2"]
    assert (folder / "recipe.yaml").is_file() and (folder / "predictions-beam2.jsonl").is_file()
    shutil.rmtree(folder)
    capsys.readouterr()
    assert main(["eval", str(trained_run), "--decode", "beam=0"]) == 2
    assert "hfkit: error: --decode: decoding strategy 'beam=0': num_beams: Input should be greater than 0" in (
        capsys.readouterr().err)
    assert main(["eval", str(trained_run), "--decode", "greedy", "--decode", "max_new_tokens=3"]) == 2
    assert "cannot read 'max_new_tokens=3'" in capsys.readouterr().err
    assert not list(trained_run.glob("sweep-*"))  # refused before any folder is made


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


def test_compare_tables_charts_and_report(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "a-gen", "generation", {"exact_match": 0.75}, {"exact_match": 0.25}, losses=[(1, 2.0), (2, 1.0)])
    fake_run(root, "b-tr", "translation", {"sacrebleu": 30.0, "chrf": 50.0}, {"sacrebleu": 10.0, "chrf": 40.0})
    fake_run(root, "c-broken", "generation", None)  # a run without metrics.json
    failed = fake_run(root, "d-failed", "generation", None)
    RunRecord(status="failed", error="RuntimeError: out of memory", task="generation").write(failed)
    fake_run(root, ".a-gen.new-20261201-000000", "generation", {"exact_match": 1.0})  # a replacement being staged
    assert main(["compare", str(root), "--format", "markdown", "--output", str(tmp_path / "report")]) == 0
    out = capsys.readouterr()
    markdown = out.out
    assert "### generation" in markdown and "### translation" in markdown
    assert ("| run | status | method | exact_match | eval set | eval examples | model | dataset | steps | train time (s) "
            "| train samples/s | peak RSS (MB) | trainable params |") in markdown
    assert "| a-gen | complete | lora | 0.25 → 0.75 (+0.5) |  | 60 | m | d.jsonl | 10 | 12.5 | 3.2 | 1,500 | 1,000 |" in markdown
    assert ("| c-broken | no scores: no metrics.json (the run never got to scoring) | lora |  |  |  | m |  |  |  |  "
            "|  |  |") in markdown
    assert "| b-tr | complete | lora | 10 → 30 (+20) | 40 → 50 (+10) |  | 60 | m | d.jsonl |" in markdown
    assert "a-gen: not paired: no predictions file" in markdown  # said, not left blank
    assert "wrote " not in out.out and f"wrote {tmp_path / 'report' / 'report.html'}" in out.err

    assert "| d-failed | failed: RuntimeError: out of memory | lora |  |  |" in markdown  # the error, not a blank
    assert ".a-gen.new" not in markdown

    rows = list(csv.DictReader(io.StringIO((tmp_path / "report" / "compare.csv").read_text())))
    assert [r["run"] for r in rows] == ["a-gen", "b-tr", "c-broken", "d-failed"]
    assert rows[0]["exact_match_delta"] == "0.5" and rows[2]["exact_match_final"] == "" and rows[1]["chrf_final"] == "50.0"
    data = json.loads((tmp_path / "report" / "compare.json").read_text())
    sacrebleu = data["runs"][1]["metrics"]["sacrebleu"]
    assert {k: sacrebleu[k] for k in ("baseline", "final", "delta")} == {"baseline": 10.0, "final": 30.0, "delta": 20.0}

    from PIL import Image

    for name in ("metrics_generation.png", "metrics_translation.png", "loss_curves.png", "overview.png"):
        with Image.open(tmp_path / "report" / name) as image:
            image.verify()
            assert image.format == "PNG"
    page = (tmp_path / "report" / "report.html").read_text()
    assert all(f'<tr data-run="{run}">' in page for run in ("a-gen", "b-tr", "c-broken", "d-failed"))
    assert page.count("data:image/png;base64,") == 4
    assert not (tmp_path / "report" / "curves_a-gen.png").exists()  # no evaluation while training: its loss is in loss_curves


def test_compare_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nothing-*")]) == 2
    assert "no run folder matches" in capsys.readouterr().err
