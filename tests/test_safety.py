"""Nothing lost (atomic writes, Ctrl-C saves a checkpoint) and nothing unsafe by default."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import record_of, tiny_recipe

from hfkit import runs

REPO = Path(__file__).resolve().parent.parent

SLOW_WRITER = """
import sys
from pathlib import Path
from hfkit import runs
runs.write_json(Path(sys.argv[1]), {"rows": ["x" * 1000] * 1_000_000})  # ~1 GB of JSON: killed long before the end
"""


def test_a_writer_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    runs.write_json(target, {"final": {"exact_match": 1.0}})
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 300  # the writer builds its JSON first: over a minute on a loaded machine
    while not any(p.name.startswith(".metrics.json.") and p.stat().st_size > 1_000_000 for p in tmp_path.iterdir()):
        assert time.time() < deadline and writer.poll() is None, "the writer never got going"
        time.sleep(0.05)
    writer.kill()  # SIGKILL in the middle of writing
    writer.wait()
    assert json.loads(target.read_text()) == {"final": {"exact_match": 1.0}}


@pytest.mark.parametrize("stop, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_saves_a_checkpoint_and_prints_the_resume_command(tiny_llama, tmp_path, stop, code):
    """SIGTERM is what Slurm, Kubernetes and `timeout` send: it stops like Ctrl-C, never leaves `running`."""
    recipe = tiny_recipe(tmp_path, tiny_llama)
    process = subprocess.Popen(
        [sys.executable, "-m", "hfkit", "train", str(recipe), "training.max_steps=5000", "eval.baseline=false"],
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    for line in process.stdout:  # wait until training logs its first steps
        if "'loss'" in line:
            break
    process.send_signal(stop)
    out, err = process.communicate(timeout=300)
    assert process.returncode == code, err[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert f"Resume with: hfkit train --resume {run}" in err and "Traceback" not in err
    assert f"stopped by {'SIGTERM' if code == 143 else 'Ctrl-C'} at step" in err
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
    glued = "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"  # the real shape: hf_ and 34 letters and digits
    env = {**os.environ, "HF_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    # glued to a word (a letter, digit or _ before hf_): \b missed these
    leaks = [f"training.run_name=run_with_{glued}",  # Trainer pickles its arguments into training_args.bin
             f"hub.tags=[{token}, x_{glued}, 7{glued}, 'https://bob:{password}@example.com/data']",
             f"data.train_file={pasted / 'train.jsonl'}", "training.report_to=tensorboard",  # event files
             "training.save_strategy=steps", "training.save_steps=2"]  # a checkpoint, with its own training_args.bin

    def hfkit(*args):
        return subprocess.run([sys.executable, "-m", "hfkit", *args], env=env, capture_output=True, text=True)

    trained = hfkit("train", str(recipe), "eval.baseline=false", *leaks)
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "checkpoint-2" / "training_args.bin").is_file() and (run / "adapter" / "training_args.bin").is_file()
    pushed = hfkit("push", str(run), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "upload"))
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    # a failure whose message quotes the path: metrics.json keeps the error, masked (a missing file is
    # refused before any run folder exists; a broken one is found while the job reads it)
    (pasted / "broken.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    failed = hfkit("train", str(recipe), *leaks, f"data.validation_file={pasted / 'broken.jsonl'}", "output.name=failed")
    assert failed.returncode == 2 and "hf_***" in failed.stderr
    failed_record = record_of(next((tmp_path / "runs").glob("failed-*")))
    assert failed_record.status == "failed" and "hf_***/broken.jsonl" in failed_record.error
    missing = hfkit("train", str(recipe), *leaks, f"data.validation_file={pasted / 'missing.jsonl'}")
    assert missing.returncode == 2 and "hf_***/missing.jsonl" in missing.stderr
    # a token pasted where a value belongs is masked in the error message
    bad = hfkit("validate", str(recipe), f"peft.r={token}")
    assert bad.returncode == 2 and "hf_***" in bad.stderr
    files = [p for folder in (tmp_path / "runs", tmp_path / "upload") for p in folder.rglob("*") if p.is_file()]
    assert len(files) > 20 and list(run.glob("tensorboard/**/events.out.tfevents.*"))
    assert (tmp_path / "upload" / "README.md").is_file()  # the dry-run card
    for path in files:
        content = path.read_bytes()
        for secret in (token, glued, glued[3:], password):
            assert secret.encode() not in content, (path, secret)
    assert "hf_***" in (run / "recipe.yaml").read_text() and "bob:***@" not in (run / "recipe.yaml").read_text()
    assert "run_with_hf_***" in (run / "adapter" / "training_args.bin").read_bytes().decode("latin-1")
    outputs = "".join(r.stdout + r.stderr for r in (trained, pushed, failed, missing, bad))
    assert token not in outputs and password not in outputs and glued[3:] not in outputs


def test_token_shaped_text_is_masked_but_ordinary_names_are_kept():
    from hfkit.redaction import redact_arg, redact_text

    assert redact_text("/data/hf_experiments/hf_datasets/train.jsonl") == "/data/hf_experiments/hf_datasets/train.jsonl"
    assert redact_text("token hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 here") == "token hf_*** here"
    for glued in ("run_with_hf_", "x_hf_", "7hf_", "Xhf_", "'hf_"):  # a letter, digit, _ or quote before it
        assert redact_text(f"{glued}AbCdEfGhIjKlMnOpQrStUvWxYz01234567") == f"{glued}***"
    assert redact_text("https://bob:pw@example.com/x") == "https://***@example.com/x"
    assert redact_arg("training.hub_token=abc") == "training.hub_token=***"


def fail_scoring(monkeypatch):
    """Make every metric computation fail, as a broken metric would after hours of training."""
    def broken(*args, **kwargs):
        raise RuntimeError("metric exploded")

    monkeypatch.setattr("hfkit.metrics.score", broken)


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
    (tmp_path / "broken.jsonl").write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n')
    assert main(["train", str(recipe), *fixed, "--overwrite", f"data.train_file={tmp_path / 'broken.jsonl'}"]) == 2
    err = capsys.readouterr().err
    assert "is not valid JSON" in err and f"{run} is untouched (the failed attempt was removed)" in err
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
    from hfkit.errors import HfkitError
    from hfkit.training import save_weights

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"the good adapter")
    with pytest.raises(HfkitError, match=f"cannot save the trained weights in {adapter} \\(No space left on device\\)"):
        save_weights(HalfSave(), None, tmp_path, adapter=True)
    assert (adapter / "adapter_model.safetensors").read_bytes() == b"the good adapter"

    merged = tmp_path / "merged"
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    (merged / "model.safetensors").write_bytes(b"the good merge")

    def half_merge(run_dir, output, dtype=None):
        output.mkdir()
        (output / "model.safetensors").write_bytes(b"half")
        raise OSError("No space left on device")

    monkeypatch.setattr(merge, "merge_into", half_merge)
    with pytest.raises(OSError):
        merge.merge_run(tmp_path, merged, overwrite=True)
    assert (merged / "model.safetensors").read_bytes() == b"the good merge"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter", "merged"]  # the half-written copy is gone


def test_merge_never_replaces_a_run_whatever_the_flags(tmp_path, capsys, monkeypatch):
    """`merge RUN --output runs --overwrite` once deleted every run, `--output RUN` the run itself."""
    from hfkit import merge
    from hfkit.cli import main

    root = tmp_path / "runs"
    run, other = root / "a", root / "b"
    for folder in (run, other):
        (folder / "adapter").mkdir(parents=True)
        (folder / "recipe.yaml").write_text("task: generation\n")
    (run / "checkpoint-2").mkdir()
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    (elsewhere / "todo.txt").write_text("keep me")
    monkeypatch.setattr(merge, "merge_into", lambda *a, **k: pytest.fail("a refused merge started"))
    refused = {
        str(root): "holds the run being merged",
        str(run): "is the run being merged",
        str(tmp_path): "holds the run being merged",
        str(other): "is a run folder",
        str(run / "adapter"): "adapter is part of the run",
        str(run / "checkpoint-2"): "checkpoint-2 is part of the run",
        str(elsewhere): "holds files but no merged model (no config.json); --overwrite only replaces an earlier merge",
        str(elsewhere / "todo.txt"): "that is a file, not a folder",
    }
    for output, fragment in refused.items():
        for flags in ([], ["--overwrite"]):
            assert main(["merge", str(run), "--output", output, *flags]) == 2
            err = capsys.readouterr().err
            assert fragment in err and len(err.strip().splitlines()) == 1, err
            assert "pass --overwrite" not in err, err  # the refusal never invites the flag
    above = tmp_path / "all"
    shutil.copytree(root, above / "runs")
    assert main(["merge", str(run), "--output", str(above), "--overwrite"]) == 2  # runs two levels down
    assert "holds the run folder" in capsys.readouterr().err
    for folder in (run, other, run / "adapter", run / "checkpoint-2", above / "runs" / "a"):
        assert folder.is_dir()
    assert (elsewhere / "todo.txt").read_text() == "keep me"

    merged = tmp_path / "merged"  # an earlier merge is replaced only with --overwrite
    merged.mkdir()
    (merged / "config.json").write_text("{}")
    assert main(["merge", str(run), "--output", str(merged)]) == 2
    assert "holds a merged model; pass --overwrite to replace it" in capsys.readouterr().err


def interrupt_at(monkeypatch, target: str, stop=KeyboardInterrupt):
    """Make `target` raise `stop`, as Ctrl-C (or SIGTERM, hfkit.errors.Terminated) arriving there would."""
    def stopped(*args, **kwargs):
        raise stop

    monkeypatch.setattr(target, stopped)


@pytest.mark.parametrize("where", ["hfkit.job.prepare", "hfkit.job.load_model"])
@pytest.mark.parametrize("stop, code", [(KeyboardInterrupt, 130), ("Terminated", 143)], ids=["ctrl-c", "sigterm"])
def test_a_stop_before_training_is_one_line_and_recorded(tiny_llama, tmp_path, capsys, monkeypatch, where, stop, code):
    from hfkit.cli import main
    from hfkit.errors import Terminated

    interrupt_at(monkeypatch, where, Terminated if stop == "Terminated" else stop)
    assert main(["train", str(tiny_recipe(tmp_path, tiny_llama))]) == code
    err = capsys.readouterr().err
    (run,) = (tmp_path / "runs").iterdir()
    how = "SIGTERM" if code == 143 else "Ctrl-C"
    assert err == f"hfkit: stopped by {how}; {run} records it (status interrupted); hfkit train --resume {run} " \
                  "starts it again\n"
    record = record_of(run)
    assert record.status == "interrupted" and record.error == f"stopped by {how} before training finished"


def test_a_stop_while_checking_is_one_line(tmp_path, capsys, monkeypatch):
    from hfkit.cli import main

    interrupt_at(monkeypatch, "hfkit.recipe.read_yaml")  # the first thing validate does
    assert main(["validate", str(tmp_path / "r.yaml")]) == 130
    assert capsys.readouterr().err == "hfkit: stopped by Ctrl-C\n"


def test_ctrl_c_while_scoring_keeps_the_weights_and_eval_completes_the_run(tiny_llama, tmp_path, capsys, monkeypatch):
    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama)
    with monkeypatch.context() as patched:
        interrupt_at(patched, "hfkit.metrics.score")
        assert main(["train", str(recipe), "eval.baseline=false"]) == 130
    (run,) = (tmp_path / "runs").iterdir()
    err = capsys.readouterr().err
    assert err == (f"hfkit: scoring interrupted by Ctrl-C; the trained weights are saved in {run}. Score them with: "
                   f"hfkit eval {run}\n")
    record = record_of(run)
    assert record.status == "scoring_failed" and record.error == "scoring interrupted by Ctrl-C"
    assert record.train.steps == 3  # written with the weights, before scoring
    assert main(["eval", str(run)]) == 0
    assert record_of(run).status == "complete" and not list(run.glob("eval-*"))


KILL_WHILE_SCORING = """
import os, signal, sys
import hfkit.metrics
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)  # a kill -9, or the kernel's OOM killer, in the middle of scoring
hfkit.metrics.score = die
from hfkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_overwrite_killed_while_scoring_is_finished_by_eval_or_resume(tiny_llama, tmp_path, capsys, monkeypatch):
    """The README promises that eval finishes a staged --overwrite attempt; a kill -9 while scoring leaves the
    record saying `running`. `train --resume` of a run whose weights are saved scores it, never retrains."""
    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["output.timestamp=false", "eval.baseline=false"]
    assert main(["train", str(recipe), *fixed, "training.max_steps=1"]) == 0
    run = tmp_path / "runs" / "generation-tiny"
    before = (run / "metrics.json").read_bytes()
    (tmp_path / "die.py").write_text(KILL_WHILE_SCORING)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    for attempt_number in (1, 2):
        killed = subprocess.run([sys.executable, str(tmp_path / "die.py"), "train", str(recipe), *fixed,
                                 "training.max_steps=2", "--overwrite"], env=env, capture_output=True, text=True)
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
        (attempt,) = (tmp_path / "runs").glob(".generation-tiny.new-*")
        assert record_of(attempt).status == "running" and (attempt / "adapter" / "adapter_model.safetensors").is_file()
        assert (run / "metrics.json").read_bytes() == before  # the finished run is untouched
        monkeypatch.setattr("transformers.Trainer.train", lambda *a, **k: pytest.fail("trained again"))
        finish = ["eval", str(attempt)] if attempt_number == 1 else ["train", "--resume", str(attempt)]
        assert main(finish) == 0, capsys.readouterr().err
        monkeypatch.undo()
        assert [p.name for p in (tmp_path / "runs").iterdir()] == ["generation-tiny"]  # swapped in
        record = record_of(run)
        assert record.status == "complete" and record.train.steps == 2 and record.final.metrics
        before = (run / "metrics.json").read_bytes()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from hfkit import runs
runs.lock_run(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_writer_of_the_same_run_is_refused_until_the_first_ends(tiny_llama, tmp_path, capsys):
    """Two --overwrite runs into one name at once: the second once silently replaced the first."""
    from hfkit.cli import main

    recipe = tiny_recipe(tmp_path, tiny_llama)
    fixed = ["output.timestamp=false", "eval.baseline=false", "training.max_steps=1"]
    assert main(["train", str(recipe), *fixed]) == 0
    run = tmp_path / "runs" / "generation-tiny"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["generation-tiny"]  # the lock file is gone
    before = (run / "metrics.json").read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (["train", str(recipe), *fixed, "--overwrite"], ["train", "--resume", str(run), "--overwrite"],
                     ["train", str(recipe), *fixed]):
            assert main(args) == 2
            err = capsys.readouterr().err
            assert err == (f"hfkit: error: {run} is being written by another hfkit process (pid {holder.pid}); wait "
                           "for it to finish, or set output.name to another name\n"), err
        assert (run / "metrics.json").read_bytes() == before and not list((tmp_path / "runs").glob(".*.new-*"))
    finally:
        holder.kill()
        holder.wait()
    assert main(["train", str(recipe), *fixed, "--overwrite"]) == 0  # the lock died with its process


def test_two_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path, monkeypatch):
    from hfkit import session
    from hfkit.recipe import recipe_from_dict

    monkeypatch.setattr(runs, "utc_stamp", lambda: "20261128-233533")
    recipe = recipe_from_dict({"task": "generation", "model": {"name_or_path": "m"}, "data": {"train_file": "t.jsonl"},
                               "output": {"dir": str(tmp_path / "runs"), "name": "same"}})
    first, second = session.create_run_dir(recipe, False), session.create_run_dir(recipe, False)
    runs.release_locks()
    assert (first.name, second.name) == ("same-20261128-233533", "same-20261128-233533-2")
    assert first.is_dir() and second.is_dir()


def test_a_full_disk_while_saving_is_one_line_and_recorded(tiny_llama, tmp_path, capsys, monkeypatch):
    import errno

    from hfkit.cli import main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("transformers.Trainer.save_model", full)
    assert main(["train", str(tiny_recipe(tmp_path, tiny_llama)), "eval.baseline=false"]) == 2
    err = capsys.readouterr().err
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert err == (f"hfkit: error: cannot save the trained weights in {run / 'adapter'} (No space left on device); "
                   "free some space; training must run again (no checkpoint was saved)\n")
    assert record_of(run).status == "failed" and not list(run.glob(".adapter.partial"))
    monkeypatch.setattr("hfkit.cli._compare", full)  # any other write: one line too
    assert main(["compare", str(run)]) == 2
    assert capsys.readouterr().err == ("hfkit: error: No space left on device; free some space (files are written "
                                       "whole: none is left half-written), then run the command again\n")


def test_weights_get_the_run_folders_usual_file_mode(tiny_llama, tmp_path):
    from hfkit.cli import main

    assert main(["train", str(tiny_recipe(tmp_path, tiny_llama)), "eval.baseline=false", "training.save_strategy=steps",
                 "training.save_steps=2"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert main(["merge", str(run)]) == 0
    modes = {str(p.relative_to(run)): p.stat().st_mode & 0o777 for p in run.rglob("*") if p.is_file()}
    expected = 0o666 & ~runs._UMASK
    assert {"adapter/adapter_model.safetensors", "checkpoint-2/adapter_model.safetensors",
            "merged/model.safetensors", "metrics.json"} <= set(modes)
    assert {name: mode for name, mode in modes.items() if mode != expected} == {}
