"""The real SmolLM2-135M-Instruct checkpoint, through its offline alias: load, 2 LoRA steps, generate."""

import json
from pathlib import Path

from support import record_of

from hfkit.cli import main

DEMO = Path(__file__).resolve().parent.parent / "recipes" / "generation" / "demo.yaml"


def test_smollm2_alias_trains_two_lora_steps_and_generates(tmp_path):
    overrides = ["training.max_steps=2", "data.max_train_samples=16", "data.max_eval_samples=4",
                 "eval.baseline=false", f"output.dir={tmp_path}"]
    assert main(["train", str(DEMO), *overrides]) == 0
    (run,) = tmp_path.iterdir()
    record = record_of(run)
    assert record.train.steps == 2
    assert record.parameters["total"] > 134_000_000  # the real model, not a toy
    assert 0 < record.parameters["trainable"] < record.parameters["total"] / 10
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(row["prediction"] for row in rows)  # it generated text for every prompt
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 16 and adapter["peft_type"] == "LORA"
