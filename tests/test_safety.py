"""Nothing lost (atomic writes, Ctrl-C saves a checkpoint) and nothing unsafe by default."""

import json
import os
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
    token = "hf_SecretTokenValue0123456789"
    recipe = tiny_recipe(tmp_path, tiny_llama)
    env = {**os.environ, "HF_TOKEN": token, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "hfkit", "train", str(recipe), "eval.baseline=false",
                             "training.seed=1"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    # a token pasted where a value belongs is masked in the error message
    bad = subprocess.run([sys.executable, "-m", "hfkit", "validate", str(recipe), f"peft.r={token}"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "hf_***" in bad.stderr
    (run,) = (tmp_path / "runs").iterdir()
    for path in run.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in result.stdout + result.stderr + bad.stdout + bad.stderr
