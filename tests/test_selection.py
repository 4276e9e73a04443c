"""Selection never sees the test set; final.step is the step whose weights were scored; the baseline
is the checkpoint's own weights whatever the hardware."""

import pytest
import torch
from datasets import DatasetDict
from support import date_rows, record_of, tiny_recipe, write_jsonl

from hfkit import job, lora
from hfkit.cli import main
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe

EVERY_STEP = ["training.eval_strategy=steps", "training.eval_steps=1", "training.save_strategy=steps",
              "training.save_steps=1"]


def test_with_eval_split_test_selection_uses_validation_and_final_step_is_the_restored_best(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama, eval_rows=5)
    write_jsonl(tmp_path / "test.jsonl", date_rows(7, offset=2000))
    # "best" = the highest validation loss, so that the restored checkpoint is an early one, not the last
    overrides = [*EVERY_STEP, "training.max_steps=4", "training.metric_for_best_model=eval_loss",
                 "training.greater_is_better=true", "training.load_best_model_at_end=true", "eval.split=test",
                 f"data.test_file={tmp_path / 'test.jsonl'}", "eval.baseline=false"]
    assert main(["validate", str(recipe), *overrides]) == 0
    assert main(["train", str(recipe), *overrides]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    record = record_of(run)
    logged = [entry for entry in record.log_history if "eval_loss" in entry]
    assert len(logged) == 4 and all(entry["eval_examples"] == 5 for entry in logged)  # the validation split
    assert record.selection_split == "validation" and record.eval_split == "test"
    assert record.final.examples == record.eval_examples == 7  # the test split, scored once at the end
    highest = max(logged, key=lambda entry: entry["eval_loss"])["step"]
    assert record.best["restored"] and record.best["step"] == highest < 4 == record.train.steps
    assert record.final.step == highest  # the step whose weights were scored, not the last one
    assert any("evaluations while training score the validation split (5 examples); the test split is scored once"
               in note for note in record.notes)


def test_a_best_model_chosen_without_a_validation_split_is_refused(tiny_llama, tmp_path, monkeypatch):
    recipe = load_recipe(tiny_recipe(tmp_path, tiny_llama), ["eval.split=test", "training.eval_strategy=steps",
                                                             f"data.test_file={tmp_path / 'validation.jsonl'}"])
    task = job.bind(recipe)
    real = job.load_data

    def without_validation(recipe, task, training=True):
        splits, cleaning = real(recipe, task, training)
        return DatasetDict({name: ds for name, ds in splits.items() if name != "validation"}), cleaning

    monkeypatch.setattr(job, "load_data", without_validation)
    with pytest.raises(HfkitError, match="eval.split: test is scored once, at the end; evaluations while training .* "
                                         "choose on the validation split, and there is none"):
        job.prepare(recipe, task, str(tiny_llama), with_train=True)
    assert job.selection_split(load_recipe(tiny_recipe(tmp_path, tiny_llama), ["eval.split=test"])) is None


@pytest.mark.parametrize("dora", [False, True])
def test_a_base_loaded_for_the_baseline_then_settled_equals_one_loaded_in_bf16(tiny_llama, tmp_path, monkeypatch, dora):
    """`hfkit train` with a baseline loads the checkpoint's fp32 weights, scores them, then casts the
    frozen base: training then starts from exactly what a bf16 load would give, adapters included."""
    monkeypatch.setattr("hfkit.lora.bf16_is_native", lambda: True)
    recipe = load_recipe(tiny_recipe(tmp_path, tiny_llama), [f"peft.use_dora={str(dora).lower()}"])
    task = job.bind(recipe)
    tokenizer = job.load_tokenizer(task, str(tiny_llama))
    torch.manual_seed(0)
    direct = job.load_model(recipe, task, tokenizer)
    torch.manual_seed(0)
    settled = job.load_model(recipe, task, tokenizer, checkpoint_dtype=True)
    assert {p.dtype for p in settled.parameters()} == {torch.float32}  # what the baseline is scored on
    lora.settle_frozen_base(settled, torch.bfloat16)
    ours = {**dict(settled.named_parameters()), **dict(settled.named_buffers())}
    theirs = {**dict(direct.named_parameters()), **dict(direct.named_buffers())}
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        assert ours[name].dtype == tensor.dtype and ours[name].requires_grad == tensor.requires_grad, name
        assert torch.equal(ours[name], tensor), name
    assert direct.get_base_model().config.dtype == settled.get_base_model().config.dtype == torch.bfloat16
