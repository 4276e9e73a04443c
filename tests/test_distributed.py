"""accelerate configs, a real 2-process run on the CPU, and resuming a killed run."""

import json
import signal
import socket
from pathlib import Path

import pytest
from support import killed_at, record_of, tiny_recipe
from support import run_hfkit as hfkit

from hfkit.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "accelerate_configs").glob("*.yaml"))


def test_all_configs_are_there():
    assert {p.stem for p in CONFIGS} == {"cpu", "multi_cpu", "single_gpu", "multi_gpu", "fsdp", "deepspeed_zero2",
                                         "deepspeed_zero3", "multi_node"}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_config_parses_with_accelerates_own_loader(config):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    loaded = load_config_from_file(str(config))
    assert loaded.num_processes >= 1 and loaded.compute_environment.value == "LOCAL_MACHINE"
    args = launch_command_parser().parse_args(["--config_file", str(config), "-m", "hfkit", "train", "r.yaml"])
    args, *_ = _validate_launch_command(args)  # what `accelerate launch` does with the file before starting
    assert args.num_processes == loaded.num_processes
    if config.stem == "deepspeed_zero3":
        assert loaded.deepspeed_config["zero_stage"] == 3 and loaded.deepspeed_config["zero3_save_16bit_model"]
    if config.stem == "fsdp":
        assert loaded.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_score_every_example_once_like_one_process(tiny_llama, tmp_path):
    # Scoring computes in fp32 with a token-weighted loss, so the eval batch size (4 per process here,
    # 7 in the one-process run) and the process count leave predictions and scores alone. Both run
    # on one thread (as each launched process does): a matmul summed by more threads rounds differently.
    recipe = tiny_recipe(tmp_path, tiny_llama, train_rows=24, eval_rows=7)
    result = hfkit("launch", "--config", str(REPO / "accelerate_configs" / "multi_cpu.yaml"), "--port", str(free_port()),
                   str(recipe), "training.eval_strategy=steps", "training.eval_steps=3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "accelerate launch --config_file" in result.stdout
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]  # a killed run leaves its .lock file
    env = json.loads((run / "env.json").read_text())
    assert env["world_size"] == 2 and env["backend"] == "gloo" and len(env["devices"]) == 2
    two = lines(run / "predictions.jsonl")
    assert len(two) == 7
    assert [row["reference"] for row in two] == [row["completion"] for row in lines(tmp_path / "validation.jsonl")]

    # One process, the same saved adapter.
    scored_one = hfkit("eval", str(run), "training.per_device_eval_batch_size=7", cwd=tmp_path,
                       env_extra={"OMP_NUM_THREADS": "1"})
    assert scored_one.returncode == 0, scored_one.stderr[-3000:]
    (scored,) = run.glob("eval-*")
    assert lines(scored / "predictions.jsonl") == two
    one, both = record_of(scored).final, record_of(run).final
    assert one.metrics["exact_match"] == both.metrics["exact_match"] and one.loss_tokens == both.loss_tokens
    assert one.metrics["eval_loss"] == pytest.approx(both.metrics["eval_loss"], rel=1e-6)
    # the evaluation while training (at step 3, the last) also scored each of the 7 examples once
    (during,) = [entry for entry in record_of(run).log_history if "eval_loss" in entry]
    assert during["step"] == 3 and during["eval_examples"] == 7
    assert during["eval_loss"] == pytest.approx(both.metrics["eval_loss"], rel=1e-6)
    assert during["eval_exact_match"] == both.metrics["exact_match"]


def test_a_killed_run_resumes_from_its_last_complete_checkpoint(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    overrides = ["training.max_steps=6", "training.save_strategy=steps", "training.save_steps=2", "eval.baseline=true"]
    died = killed_at(3, ["train", str(recipe), *overrides], tmp_path)  # after the checkpoint at step 2
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]  # a killed run leaves its .lock file
    assert (run / "checkpoint-2" / "trainer_state.json").is_file() and not (run / "predictions.jsonl").exists()
    assert record_of(run).status == "running" and record_of(run).baseline  # the baseline was kept
    (run / "checkpoint-4").mkdir()  # a checkpoint the crash left half-written
    (run / "checkpoint-4" / "adapter_model.safetensors").write_bytes(b"partial")

    resumed = hfkit("train", "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Skipping checkpoint-4" in resumed.stdout and "from checkpoint-2" in resumed.stdout
    record = record_of(run)
    assert record.status == "complete" and record.train.steps == 6
    assert record.train.resumed_from == "checkpoint-2"
    assert record.baseline and record.final and len(lines(run / "predictions.jsonl")) == 6
    logged = [entry["step"] for entry in record.log_history if "loss" in entry]
    assert logged == [1, 2, 3, 4, 5, 6]  # none lost, none twice
    assert (run / "adapter" / "adapter_model.safetensors").is_file()

    # the numbers cover the whole run, not only the steps after the resume
    losses = [entry["loss"] for entry in record.log_history if "loss" in entry]
    assert record.train.train_loss == pytest.approx(sum(losses) / 6, rel=1e-6)
    before = json.loads((run / "checkpoint-2" / "trainer_state.json").read_text())["stateful_callbacks"]["TrainingClock"]
    assert 0 < before["attributes"]["runtime_s"] < record.train.runtime_s
    samples = 6 * 4  # max_steps x batch size
    assert samples * 0.9 < record.train.samples_per_second * record.train.runtime_s < samples * 1.5
    env = json.loads((run / "env.json").read_text())  # the command that started the run, and the one that resumed it
    assert env["command"][:3] == ["hfkit", "train", str(recipe)] and env["resumed_with"] == [
        ["hfkit", "train", "--resume", str(run)]]


def test_resume_never_starts_a_fresh_optimizer_or_trips_on_a_damaged_checkpoint(tiny_llama, tmp_path, capsys):
    """optimizer.pt missing resumed silently with a fresh optimizer; missing or empty weights and a cut
    rng_state.pth ended in tracebacks. A damaged checkpoint is skipped with the reason; with none left,
    one line."""
    import shutil

    from hfkit import runs

    recipe = tiny_recipe(tmp_path, tiny_llama)
    overrides = ["training.max_steps=4", "training.save_strategy=steps", "training.save_steps=1", "eval.baseline=false"]
    died = killed_at(3, ["train", str(recipe), *overrides], tmp_path)  # checkpoints 1 and 2 are written
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]  # a killed run leaves its .lock file
    assert runs.last_complete_checkpoint(run) == (run / "checkpoint-2", [])
    damages = {
        "optimizer.pt is missing: resuming would start a fresh optimizer": lambda c: (c / "optimizer.pt").unlink(),
        "its weights are missing (no adapter_model.safetensors or model.safetensors)":
            lambda c: (c / "adapter_model.safetensors").unlink(),
        "adapter_model.safetensors is empty": lambda c: (c / "adapter_model.safetensors").write_bytes(b""),
        "adapter_model.safetensors is damaged": lambda c: (c / "adapter_model.safetensors").write_bytes(b"\x10" * 64),
        "rng_state.pth is truncated or damaged":
            lambda c: (c / "rng_state.pth").write_bytes((c / "rng_state.pth").read_bytes()[:300]),
        "scheduler.pt is truncated or damaged": lambda c: (c / "scheduler.pt").write_bytes(b"PK"),
    }
    pristine = tmp_path / "pristine"
    shutil.copytree(run / "checkpoint-2", pristine)
    for reason, damage in damages.items():
        shutil.rmtree(run / "checkpoint-2")
        shutil.copytree(pristine, run / "checkpoint-2")
        damage(run / "checkpoint-2")
        checkpoint, skipped = runs.last_complete_checkpoint(run)
        assert checkpoint == run / "checkpoint-1" and len(skipped) == 1 and skipped[0].startswith(
            f"checkpoint-2: {reason}"), skipped
    optimizer = (run / "checkpoint-1" / "optimizer.pt").read_bytes()
    (run / "checkpoint-1" / "optimizer.pt").unlink()  # nothing usable left: refused in one line, not a fresh start
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hfkit: error: --resume {run}: no usable checkpoint (checkpoint-2: scheduler.pt is truncated")
    assert "checkpoint-1: optimizer.pt is missing" in err and len(err.splitlines()) == 1

    shutil.rmtree(run / "checkpoint-2")
    shutil.copytree(pristine, run / "checkpoint-2")
    (run / "checkpoint-2" / "optimizer.pt").unlink()
    (run / "checkpoint-1" / "optimizer.pt").write_bytes(optimizer)  # a usable one, one step earlier
    resumed = hfkit("train", "--resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Skipping checkpoint-2: optimizer.pt is missing" in resumed.stdout
    assert record_of(run).status == "complete" and record_of(run).train.resumed_from == "checkpoint-1"


def test_resume_needs_a_run_folder(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_fsdp_on_the_cpu_is_refused_with_the_reason(tiny_llama, tmp_path):
    # accelerate 1.15 turns only GPU-type process groups into FSDP: on the CPU the FSDP plugin was
    # dropped without a word (the run trained as DDP; env.json said MULTI_CPU). hfkit says so instead.
    recipe = tiny_recipe(tmp_path, tiny_llama)
    result = hfkit("launch", "--config", str(REPO / "accelerate_configs" / "fsdp.yaml"), "--num-processes", "2",
                   "--port", str(free_port()), str(recipe), cwd=tmp_path)
    assert result.returncode != 0
    assert "FSDP needs GPUs here (accelerate 1.15 applies FSDP only to GPU-type process groups" in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
