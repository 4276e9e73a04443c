"""The memory plan (resources.memory_gb): what it measures, what it chooses, what it keeps."""

import json

import pytest
import torch
from support import date_rows, make_tokenizer, record_of, run_hfkit, tiny_recipe, write_jsonl

import hfkit
from hfkit import memory_plan
from hfkit.memory_plan import Setting

MIB = 1024


def losses(record) -> list[float]:
    return [entry["loss"] for entry in record.log_history if "loss" in entry]


def lora_weights(run) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter" / "adapter_model.safetensors"))


def test_micro_batches_keep_the_loss_of_every_step(tiny_llama, tmp_path, monkeypatch):
    """The plan's split (batch 8 as micro-batches of 2 x 4 accumulation steps) trains on the same
    examples per step with the same loss: Trainer normalises by the step's target tokens."""
    recipe = tiny_recipe(tmp_path, tiny_llama)
    common = ["training.max_steps=3", "training.per_device_train_batch_size=8", "model.dtype=float32",
              "peft.dropout=0.0", "eval.baseline=false"]
    whole = hfkit.train(recipe, [*common, "resources.memory_gb=off", "output.name=whole"])
    split = Setting(checkpointing=False, micro_batch=2, accumulation=4)
    monkeypatch.setattr(memory_plan, "choose", lambda recipe, probes, budget, source: {
        "budget_gb": 1.0, "budget": source, "batch": 8, "options": [{"setting": split.label(8), "measured_gb": 0.5}],
        "choice": split.__dict__})
    parts = hfkit.train(recipe, [*common, "output.name=parts"])
    assert parts.memory_plan["choice"] == {"checkpointing": False, "micro_batch": 2, "accumulation": 4}
    trainer_state = json.loads((parts.path / "metrics.json").read_text())
    assert trainer_state["memory_plan"]["training_peak_gb"] > 0
    assert len(losses(whole)) == len(losses(parts)) == 3
    for a, b in zip(losses(whole), losses(parts)):  # step 2 and 3 also check the updates were the same
        assert b == pytest.approx(a, abs=1e-5)
    for name, tensor in lora_weights(whole.path).items():
        torch.testing.assert_close(lora_weights(parts.path)[name], tensor, atol=1e-5, rtol=1e-4)


def test_a_planned_run_trains_exactly_as_an_unplanned_one(tiny_llama, tmp_path):
    """The probes draw no random numbers the run would see (dropout is on) and leave no gradient."""
    recipe = tiny_recipe(tmp_path, tiny_llama)
    common = ["training.max_steps=2", "peft.dropout=0.1", "eval.baseline=false"]
    planned = hfkit.train(recipe, [*common, "output.name=planned"])
    unplanned = hfkit.train(recipe, [*common, "resources.memory_gb=off", "output.name=unplanned"])
    assert planned.memory_plan["choice"] == {"checkpointing": False, "micro_batch": 4, "accumulation": 1}
    assert planned.memory_plan["budget"].startswith("auto: 85% of")
    assert unplanned.memory_plan is None
    assert losses(planned) == losses(unplanned)
    # the run's peak is its own: the probes' peaks are kept apart (hfkit.memory)
    assert planned.peak_memory_mb["rss"] >= planned.memory_plan["training_peak_gb"] * MIB - 1
    assert planned.memory_plan["run_peak_gb"] == round(planned.peak_memory_mb["rss"] / MIB, 3)


@pytest.fixture(scope="module")
def wide_trainer(tmp_path_factory):
    """A tiny Llama whose activations dwarf the noise of RSS: eager attention with 16 heads keeps a
    [rows, 16, length, length] softmax per layer (~50 MB at 8 x 250 tokens)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from hfkit import job

    folder = tmp_path_factory.mktemp("wide")
    tokenizer = make_tokenizer()
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                         num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=512,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    rows = [{"prompt": f"Row {i}: " + "Write this date as YYYY-MM-DD: March 5, 2021. " * 12,
             "completion": "2021-03-05 " * 8} for i in range(8)]
    write_jsonl(folder / "train.jsonl", rows)
    write_jsonl(folder / "validation.jsonl", date_rows(2))
    recipe = hfkit.load_recipe({"task": "generation", "model": {"name_or_path": str(folder / "model")},
                                "data": {"train_file": str(folder / "train.jsonl"), "max_length": 400,
                                         "validation_file": str(folder / "validation.jsonl")},
                                "training": {"per_device_train_batch_size": 8, "report_to": "none"},
                                "output": {"dir": str(folder / "runs")}})
    task = job.bind(recipe)
    args = job.training_arguments(recipe, task, folder / "runs" / "x")
    prepared = job.prepare(recipe, task, str(folder / "model"), with_train=True)
    model = job.load_model(recipe, task, prepared.tokenizer)
    model.get_base_model().set_attn_implementation("eager")
    return recipe, job.make_trainer(args, prepared, model)


def test_the_plan_chooses_checkpointing_then_micro_batches_as_the_budget_shrinks(wide_trainer):
    recipe, trainer = wide_trainer
    probes = memory_plan.Probes(trainer, 8)
    assert probes.shape.startswith("8 x up to ")
    as_is, checkpointing = probes.measure(False, 8), probes.measure(True, 8)
    smallest = probes.measure(True, 1)
    assert as_is > checkpointing + 100 > smallest + 100  # MiB: far apart, as the budgets below need

    def budget(step_peak: float) -> float:  # the budget whose share for a step (HEADROOM) is step_peak
        return step_peak / memory_plan.HEADROOM

    plan = memory_plan.choose(recipe, probes, budget(as_is + 50), "test")
    assert plan["choice"] == {"checkpointing": False, "micro_batch": 8, "accumulation": 1}

    plan = memory_plan.choose(recipe, probes, budget((as_is + checkpointing) / 2), "test")
    assert plan["choice"] == {"checkpointing": True, "micro_batch": 8, "accumulation": 1}
    assert [o["setting"] for o in plan["options"]] == ["as is", "gradient checkpointing"]
    assert plan["options"][0]["measured_gb"] * MIB > (as_is + checkpointing) / 2  # measured, then passed over

    plan = memory_plan.choose(recipe, probes, budget((checkpointing + smallest) / 2), "test")
    choice = plan["choice"]
    assert choice["checkpointing"] and choice["micro_batch"] < 8 and choice["micro_batch"] * choice["accumulation"] == 8
    assert plan["options"][-1]["measured_gb"] * MIB <= (checkpointing + smallest) / 2

    plan = memory_plan.choose(recipe, probes, budget(smallest - 1), "test")
    assert "choice" not in plan
    # the record keeps GiB to 3 decimals and the message shows those to 2 (formatting the raw MiB instead
    # differed in the last digit once: 1.125 shows as 1.12)
    assert plan["budget_gb"] == round(budget(smallest - 1) / MIB, 3)
    assert plan["options"][-1]["measured_gb"] == round(smallest / MIB, 3)
    assert plan["error"].startswith(f"resources.memory_gb: nothing fits {plan['budget_gb']:.2f} GiB (test): "
                                    f"the smallest setting, gradient checkpointing, micro-batches of 1 x 8, peaks at "
                                    f"{plan['options'][-1]['measured_gb']:.2f} GiB on the longest batch (8 x up to ")
    assert "raise resources.memory_gb" in plan["error"] and "\n" not in plan["error"]


def test_the_ladder_keeps_what_the_recipe_sets():
    def ladder(**training):
        recipe = hfkit.load_recipe({"task": "generation", "model": {"name_or_path": "x"},
                                    "data": {"train_file": "t.jsonl"}, "training": training})
        settings, warn_only = memory_plan.ladder(recipe, batch=8, accumulation=training.get("gradient_accumulation_steps", 1))
        return [(s.checkpointing, s.micro_batch, s.accumulation) for s in settings], warn_only

    assert ladder() == ([(False, 8, 1), (True, 8, 1), (True, 4, 2), (True, 2, 4), (True, 1, 8)], False)
    assert ladder(gradient_checkpointing=True) == ([(True, 8, 1), (True, 4, 2), (True, 2, 4), (True, 1, 8)], False)
    assert ladder(gradient_checkpointing=False) == ([(False, 8, 1), (False, 4, 2), (False, 2, 4), (False, 1, 8)], False)
    assert ladder(gradient_accumulation_steps=2) == ([(False, 8, 2), (True, 8, 2)], False)
    assert ladder(gradient_checkpointing=False, gradient_accumulation_steps=2) == ([(False, 8, 2)], True)


def test_nothing_fits_is_one_line_before_training(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    result = run_hfkit("train", str(recipe), "resources.memory_gb=0.1", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("hfkit: error: resources.memory_gb: nothing fits 0.10 GiB: the model, data and libraries "
                           "alone hold ")
    assert "raise resources.memory_gb" in line
    (run,) = (tmp_path / "runs").iterdir()
    assert record_of(run).status == "failed" and not list(run.glob("checkpoint-*"))
    assert record_of(run).memory_plan["budget_gb"] == 0.1 and record_of(run).memory_plan["resident_gb"] > 0.1
    assert not (run / "predictions_baseline.jsonl").exists()  # stopped before the baseline was scored


def test_a_resumed_run_keeps_its_plan():
    """Its checkpoint's data position counts micro-batches: the plan it started with is applied again."""
    previous = {"choice": {"checkpointing": True, "micro_batch": 2, "accumulation": 2}, "batch": 4}

    class Args:
        per_device_train_batch_size, gradient_accumulation_steps, n_gpu = 4, 1, 0
        activation_checkpointing = gradient_checkpointing = False

        @property
        def train_batch_size(self):
            return self.per_device_train_batch_size

    class Trainer:
        args = Args()
        _train_batch_size = 4

    trainer = Trainer()
    assert memory_plan.plan(None, trainer, previous) is previous  # no recipe read, nothing measured
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) == (2, 2)
    assert trainer.args.gradient_checkpointing and trainer._train_batch_size == 2
