"""The demo data is what its deterministic script writes."""

import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "recipes" / "generation" / "data"


def test_make_dates_reproduces_the_committed_files(tmp_path):
    script = tmp_path / "make_dates.py"
    script.write_text((DATA / "make_dates.py").read_text())
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    for name in ("dates_train.jsonl", "dates_validation.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes()
    train = {line for line in (DATA / "dates_train.jsonl").read_text().splitlines()}
    validation = {line for line in (DATA / "dates_validation.jsonl").read_text().splitlines()}
    assert len(train) == 400 and len(validation) == 60 and not train & validation
