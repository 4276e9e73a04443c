"""The package works outside the checkout: a wheel in a fresh venv lists, validates and dry-run pushes."""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from support import tiny_recipe

from hfkit.cli import main

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_a_wheel_installed_outside_the_checkout_lists_validates_and_pushes(tiny_llama, tmp_path):
    wheels = tmp_path / "wheels"
    run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        cwd=tmp_path)
    (wheel,) = wheels.glob("hfkit-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                    cwd=tmp_path).stdout.strip())
    # hfkit itself comes from the wheel; its dependencies (torch, transformers, ...) from this venv,
    # added as a plain path so the checkout's editable hfkit is not.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    hfkit = [str(python), "-m", "hfkit"]
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": ""}

    where = run([str(python), "-c", "import hfkit; print(hfkit.__file__)"], cwd=elsewhere, env=offline).stdout
    assert str(site) in where and str(REPO) not in where
    assert run([*hfkit, "--version"], cwd=elsewhere, env=offline).stdout.startswith("hfkit ")
    listing = run([*hfkit, "recipes"], cwd=elsewhere, env=offline).stdout.splitlines()
    assert listing[0].startswith(f"Shipped with hfkit ({site}")  # where they are, said once
    rows = {line.split()[0]: line for line in listing[1:]}
    assert rows["generation/demo.yaml"].endswith("runs offline") and str(site) not in "".join(rows)
    assert rows["summarization/bert2bert_cnn_dailymail.yaml"].split()[2:5] == [
        "google-bert/bert-base-uncased", "+", "google-bert/bert-base-uncased"] and "?" not in listing[1:]
    assert rows["qa/distilbert_squad.yaml"].endswith("needs the Hub")
    # the listed name works from any folder
    assert "valid" in run([*hfkit, "validate", "generation/demo.yaml"], cwd=elsewhere, env=offline).stdout

    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "training.max_steps=1", "eval.baseline=false"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    pushed = run([*hfkit, "push", str(run_dir), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "up")],
                 cwd=elsewhere, env=offline)
    assert "README.md" in pushed.stdout and "fine-tuned for **text generation**" in (tmp_path / "up" / "README.md").read_text()
