"""The side files are typed, with a schema version: prediction rows, sweep.json, compare.json; files
written before they had a version are read as version 1."""

import json

import pytest

from fake_runs import fake_run

from hfkit import significance
from hfkit.cli import main
from hfkit.formats import (COMPARE_VERSION, PREDICTIONS_VERSION, SWEEP_VERSION, CompareSummary, PredictionRow,
                           SweepRecord, read_prediction_lines, read_sweep, write_predictions)


def test_prediction_rows_are_typed_and_old_rows_still_pair(tmp_path):
    old = [{"id": f"ex{i}", "input": "x", "reference": f"r{i}", "prediction": f"r{i}" if i % 2 else "no",
            "scores": {"exact_match": float(i % 2)}, "from_a_newer_hfkit": i} for i in range(12)]
    (tmp_path / "old.jsonl").write_text("".join(json.dumps(row) + "\n" for row in old))
    rows = read_prediction_lines((tmp_path / "old.jsonl").read_text())
    assert rows[3].from_a_newer_hfkit == 3 and rows[0] == old[0]  # read as it was, unknown keys kept
    new = [PredictionRow(id=row["id"], input="x", reference=row["reference"], prediction=row["reference"],
                         scores={"exact_match": 1.0}) for row in old]
    assert write_predictions(tmp_path / "new.jsonl", new) == PREDICTIONS_VERSION
    written = [json.loads(line) for line in (tmp_path / "new.jsonl").read_text().splitlines()]
    assert written[0] == {"id": "ex0", "input": "x", "reference": "r0", "prediction": "r0",
                          "scores": {"exact_match": 1.0}}  # no metric_prediction outside SQuAD
    a, b = (significance.read_predictions(tmp_path / name) for name in ("old.jsonl", "new.jsonl"))
    assert a.eval_set == b.eval_set  # the same examples, whatever version wrote them
    tested = significance.paired_test(a, b, ["exact_match"], None, 200)["exact_match"]
    assert tested["discordant"] == 6 and tested["b_better"] == 6
    (tmp_path / "ids.jsonl").write_text('{"input": "x", "reference": "r", "prediction": "r"}\n')
    with pytest.raises(significance.NotPaired, match="no example ids"):  # nothing joins them: said, not hidden
        significance.read_predictions(tmp_path / "ids.jsonl")


def test_sweep_records_are_written_with_their_version_and_old_ones_read(tmp_path):
    old = {"kind": "sweep", "status": "complete", "error": None, "target": "runs/x", "method": "lora", "seed": 42,
           "metric_args": {}, "loss": {"eval_loss": 1.5}, "task": "generation", "model": "m", "eval_examples": 6,
           "metric_names": ["exact_match"], "strategies": [
               {"name": "greedy", "settings": {"num_beams": 1}, "sampled": False, "seed": None,
                "metrics": {"exact_match": 0.5}, "intervals": {"exact_match": [0.1, 0.9]}, "examples": 6,
                "examples_per_s": 3.0, "predictions": "predictions-greedy.jsonl"}]}
    (tmp_path / "sweep.json").write_text(json.dumps(old))
    record = read_sweep(tmp_path)
    assert record.schema_version == 1 and record.strategies[0].metrics == {"exact_match": 0.5}
    assert record.strategies[0].settings["num_beams"] == 1 and record.loss["eval_loss"] == 1.5
    record.error = "token hf_abcdefghijklmnopqrstuvwxyz0123 leaked"
    SweepRecord(**{**record.model_dump(), "schema_version": SWEEP_VERSION}).write(tmp_path)
    again = json.loads((tmp_path / "sweep.json").read_text())
    assert again["schema_version"] == SWEEP_VERSION and "hf_abcdefghijklmnopqrstuvwxyz0123" not in again["error"]


def test_compare_json_is_a_versioned_compare_summary(tmp_path, capsys):
    fake_run(tmp_path / "runs", "a", "generation", {"exact_match": 0.5, "perplexity": 3.0},
             {"exact_match": 0.1, "perplexity": ">5.18e+21"})
    assert main(["compare", str(tmp_path / "runs"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema_version"] == COMPARE_VERSION
    summary = CompareSummary.model_validate(data)
    shown = summary.runs[0].metrics
    assert summary.runs[0].run == "a" and summary.runs[0].task == "generation"
    assert shown["exact_match"].delta == 0.4 and shown["perplexity"].lower_is_better
    assert shown["perplexity"].baseline == ">5.18e+21" and shown["perplexity"].delta is None
