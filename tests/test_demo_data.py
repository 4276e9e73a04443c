"""The demo data is exactly what its deterministic scripts write."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SCRIPTS = {
    "generation/data/make_dates.py": ("dates_train.jsonl", "dates_validation.jsonl"),
    "translation/data/make_pairs.py": ("en_fr_train.jsonl", "en_fr_validation.jsonl"),
    "summarization/data/make_briefs.py": ("briefs_train.jsonl", "briefs_validation.jsonl"),
    "qa/data/make_qa.py": ("people_train.jsonl", "people_validation.jsonl"),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_reproduces_the_committed_files(script, tmp_path):
    shutil.copy(RECIPES / script, tmp_path)
    subprocess.run([sys.executable, str(tmp_path / Path(script).name)], check=True, capture_output=True)
    train_name, validation_name = SCRIPTS[script]
    folder = (RECIPES / script).parent
    for name in (train_name, validation_name):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes()
    train = set((folder / train_name).read_text(encoding="utf-8").splitlines())
    validation = set((folder / validation_name).read_text(encoding="utf-8").splitlines())
    assert len(train) == 400 and len(validation) == 60 and not train & validation
