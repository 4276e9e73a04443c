"""Nothing lost (atomic writes, Ctrl-C saves a checkpoint) and nothing unsafe by default."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from support import record_of, tiny_recipe

from hfkit import runs

REPO = Path(__file__).resolve().parent.parent

SLOW_WRITER = """
import sys
from pathlib import Path
from hfkit import runs
runs.write_json(Path(sys.argv[1]), {"rows": ["x" * 1000] * 2_000_000})  # ~2 GB of JSON: killed long before the end
"""


def test_a_writer_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    runs.write_json(target, {"final": {"exact_match": 1.0}})
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    while not any(p.name.startswith(".metrics.json.") and p.stat().st_size > 1_000_000 for p in tmp_path.iterdir()):
        assert time.time() < deadline and writer.poll() is None, "the writer never got going"
        time.sleep(0.05)
    writer.kill()  # SIGKILL in the middle of writing
    writer.wait()
    assert json.loads(target.read_text()) == {"final": {"exact_match": 1.0}}


def test_ctrl_c_saves_a_checkpoint_and_prints_the_resume_command(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    process = subprocess.Popen(
        [sys.executable, "-m", "hfkit", "train", str(recipe), "training.max_steps=5000", "eval.baseline=false"],
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # wait until training logs its first steps
        if "'loss'" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert f"Resume with: hfkit train --resume {run}" in err and "Traceback" not in err
    checkpoint, skipped = runs.last_complete_checkpoint(run)
    assert checkpoint is not None and not skipped
    assert (checkpoint / "optimizer.pt").is_file() and (checkpoint / "adapter_model.safetensors").is_file()
    assert record_of(run).status == "interrupted"
    steps = json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]
    assert 0 < steps < 5000


def test_a_hub_token_never_reaches_run_files_logs_or_errors(tiny_llama, tmp_path):
    token, password = "hf_SecretTokenValue0123456789", "s3cretPassw0rd"
    recipe = tiny_recipe(tmp_path, tiny_llama)
    pasted = tmp_path / token  # a data folder named after the token: the path lands in recipe.yaml and env.json
    pasted.mkdir()
    shutil.copy(tmp_path / "train.jsonl", pasted / "train.jsonl")
    env = {**os.environ, "HF_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    leaks = [f"training.run_name={token}",  # Trainer pickles its arguments into training_args.bin
             f"hub.tags=[{token}, 'https://bob:{password}@example.com/data']", f"data.train_file={pasted / 'train.jsonl'}",
             "training.save_strategy=steps", "training.save_steps=2"]  # a checkpoint, with its own training_args.bin

    def hfkit(*args):
        return subprocess.run([sys.executable, "-m", "hfkit", *args], env=env, capture_output=True, text=True)

    trained = hfkit("train", str(recipe), "eval.baseline=false", *leaks)
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoint-2" / "training_args.bin").is_file() and (run / "adapter" / "training_args.bin").is_file()
    pushed = hfkit("push", str(run), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "upload"))
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    # a failure whose message quotes the path: metrics.json keeps the error, masked
    failed = hfkit("train", str(recipe), *leaks, f"data.validation_file={pasted / 'missing.jsonl'}", "output.name=failed")
    assert failed.returncode == 2 and "hf_***" in failed.stderr
    failed_record = record_of(next((tmp_path / "runs").glob("failed-*")))
    assert failed_record.status == "failed" and "hf_***/missing.jsonl" in failed_record.error
    # a token pasted where a value belongs is masked in the error message
    bad = hfkit("validate", str(recipe), f"peft.r={token}")
    assert bad.returncode == 2 and "hf_***" in bad.stderr
    files = [p for folder in (tmp_path / "runs", tmp_path / "upload") for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 20
    for path in files:
        content = path.read_bytes()
        assert token.encode() not in content and password.encode() not in content, path
    assert "hf_***" in (run / "recipe.yaml").read_text() and "bob:***@" not in (run / "recipe.yaml").read_text()
    outputs = "".join(r.stdout + r.stderr for r in (trained, pushed, failed, bad))
    assert token not in outputs and password not in outputs


def test_token_shaped_text_is_masked_but_ordinary_names_are_kept():
    from hfkit.redaction import redact_arg, redact_text

    assert redact_text("/data/hf_experiments/hf_datasets/train.jsonl") == "/data/hf_experiments/hf_datasets/train.jsonl"
    assert redact_text("token hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 here") == "token hf_*** here"
    assert redact_text("https://bob:pw@example.com/x") == "https://***@example.com/x"
    assert redact_arg("training.hub_token=abc") == "training.hub_token=***"


def fail_scoring(monkeypatch):
    """Make every metric computation fail, as a broken metric would after hours of training."""
    def broken(*args, **kwargs):
        raise RuntimeError("metric exploded")

    monkeypatch.setattr("hfkit.metrics.compute", broken)


def test_weights_are_saved_before_scoring_and_eval_completes_a_run_whose_scoring_failed(tiny_llama, tmp_path, capsys,
                                                                                         monkeypatch):
    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama)
    with monkeypatch.context() as patched:
        fail_scoring(patched)
        assert main(["train", str(recipe), "eval.baseline=false"]) == 2
    (run,) = (tmp_path / "runs").iterdir()
    err = capsys.readouterr().err
    assert "scoring failed after training (RuntimeError: metric exploded)" in err and f"hfkit eval {run}" in err
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and not (run / "predictions.jsonl").exists()
    record = record_of(run)
    assert record.status == "scoring_failed" and record.error == "RuntimeError: metric exploded"
    assert record.train.steps == 3 and record.final is None

    assert main(["eval", str(run)]) == 0  # completes the run in place
    record = record_of(run)
    assert record.status == "complete" and record.error is None and not list(run.glob("eval-*"))
    assert "exact_match" in record.final.metrics and record.final.predictions == "predictions.jsonl"
    assert len((run / "predictions.jsonl").read_text().splitlines()) == 6


def test_a_failing_overwrite_never_costs_the_finished_run(tiny_llama, tmp_path, capsys, monkeypatch):
    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["output.timestamp=false", "eval.baseline=false", "training.max_steps=1"]
    assert main(["train", str(recipe), *fixed]) == 0
    run = tmp_path / "runs" / "generation-tiny"
    before = (run / "metrics.json").read_bytes()

    # fails before training: nothing worth keeping, so the attempt is removed
    assert main(["train", str(recipe), *fixed, "--overwrite", "data.train_file=missing.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "file not found" in err and f"{run} is untouched (the failed attempt was removed)" in err
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["generation-tiny"]
    assert (run / "metrics.json").read_bytes() == before

    # fails after training: the attempt holds trained weights, so it is kept (hidden) and named
    with monkeypatch.context() as patched:
        fail_scoring(patched)
        assert main(["train", str(recipe), *fixed, "--overwrite", "training.max_steps=2"]) == 2
    err = capsys.readouterr().err
    (attempt,) = (tmp_path / "runs").glob(".generation-tiny.new-*")
    assert f"hfkit eval {attempt}" in err and f"{run} is untouched; this attempt is kept in {attempt}" in err
    assert (run / "metrics.json").read_bytes() == before
    assert record_of(attempt).status == "scoring_failed" and (attempt / "adapter" / "adapter_model.safetensors").is_file()
    assert main(["compare", str(tmp_path / "runs"), "--format", "csv"]) == 0  # the hidden attempt is no run of its own
    assert [line.split(",")[0] for line in capsys.readouterr().out.splitlines()[1:]] == ["generation-tiny"]

    # scoring the attempt finishes it, and only then does it replace the old run
    assert main(["eval", str(attempt)]) == 0
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["generation-tiny"]
    record = record_of(run)
    assert record.status == "complete" and record.train.steps == 2 and (run / "predictions.jsonl").is_file()

    # a successful overwrite replaces the run
    assert main(["train", str(recipe), *fixed, "--overwrite", "training.max_steps=3"]) == 0
    assert record_of(run).train.steps == 3 and [p.name for p in (tmp_path / "runs").iterdir()] == ["generation-tiny"]


def test_a_run_that_fails_during_training_records_the_failure(tiny_llama, tmp_path, monkeypatch):
    import pytest

    from hfkit.cli import main

    def crash(self, args, state, control, **kwargs):
        raise RuntimeError(f"injected failure at step {state.global_step}")

    monkeypatch.setattr("hfkit.trainer.StopOnInterrupt.on_step_end", crash)
    with pytest.raises(RuntimeError, match="injected failure"):  # a bug, not a user mistake: its traceback stays
        main(["train", str(tiny_recipe(tmp_path, tiny_llama)), "eval.baseline=false"])
    (run,) = (tmp_path / "runs").iterdir()
    record = record_of(run)
    assert record.status == "failed" and record.error == "RuntimeError: injected failure at step 1"
    assert not (run / "adapter").exists()


class HalfSave:
    """A Trainer whose save_model dies halfway through writing (a full disk, a kill)."""

    def save_model(self, path):
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "adapter_model.safetensors").write_bytes(b"half")
        raise OSError("No space left on device")


def test_weight_and_merged_folders_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    import pytest

    from hfkit import merge
    from hfkit.training import save_weights

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"the good adapter")
    with pytest.raises(OSError, match="No space left"):
        save_weights(HalfSave(), None, tmp_path, "lora")
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"the good adapter"

    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "model.safetensors").write_bytes(b"the good merge")

    def half_merge(run_dir, output, dtype=None):
        output.mkdir()
        (output / "model.safetensors").write_bytes(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(merge, "merge_into", half_merge)
    with pytest.raises(OSError):
        merge.merge_run(tmp_path, merged, overwrite=True)
    assert (merged / "model.safetensors").read_bytes() == b"the good merge"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".adapter.partial", "adapter", "merged"]
