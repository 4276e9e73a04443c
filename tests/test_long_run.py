"""The long run: generation metrics while training, the best checkpoint, early stopping, tensorboard."""

import pytest
from safetensors.torch import load_file
from support import jsonl, killed_at, make_tiny_seq2seq, record_of, tiny_recipe, write_jsonl

from hfkit.cli import main

EVERY_STEP = ["training.eval_strategy=steps", "training.eval_steps=1", "training.save_strategy=steps",
              "training.save_steps=1"]


def only_run(folder):
    (run,) = [p for p in (folder / "runs").iterdir() if p.is_dir()]
    return run


def evaluations(record) -> list[dict]:
    return [entry for entry in record.log_history if "eval_loss" in entry]


def test_decoder_only_evaluations_generate_and_score_the_recipes_metrics(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama, eval_rows=8)
    overrides = ["training.max_steps=4", "training.eval_strategy=steps", "training.eval_steps=2",
                 "eval.during_training_samples=5", "eval.baseline=false"]
    assert main(["train", str(recipe), *overrides]) == 0
    record = record_of(only_run(tmp_path))
    logged = evaluations(record)
    assert [entry["step"] for entry in logged] == [2, 4]
    assert all({"eval_exact_match", "eval_perplexity"} <= set(entry) and entry["eval_examples"] == 5 for entry in logged)
    assert record.final.examples == 8  # the final evaluation scores the whole split
    assert record.best is None  # no metric_for_best_model chosen


def test_encoder_decoder_evaluations_score_bleu_while_training(tmp_path):
    model = make_tiny_seq2seq(tmp_path / "t5", "t5")
    rows = [{"translation": {"en": f"the cat {i}", "fr": f"le chat {i}"}} for i in range(12)]
    write_jsonl(tmp_path / "t.jsonl", rows[:8])
    write_jsonl(tmp_path / "v.jsonl", rows[8:])
    (tmp_path / "r.yaml").write_text(f"""\
task: translation
model: {{name_or_path: {model}}}
data: {{train_file: t.jsonl, validation_file: v.jsonl, format: wmt, source_lang: en, target_lang: fr}}
training: {{max_steps: 2, per_device_train_batch_size: 4, eval_strategy: steps, eval_steps: 1, save_strategy: "no",
           metric_for_best_model: chrf}}
generation: {{max_new_tokens: 4}}
output: {{dir: {tmp_path / "runs"}}}
""", encoding="utf-8")
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    logged = evaluations(record_of(only_run(tmp_path)))
    assert [entry["step"] for entry in logged] == [1, 2] and all("eval_sacrebleu" in e and "eval_chrf" in e for e in logged)
    # without checkpoints Trainer keeps the best value but no step: the record takes it from the log
    best = record_of(only_run(tmp_path)).best
    top = max(logged, key=lambda e: e["eval_chrf"])  # ties: the first, as Trainer keeps the first best
    assert best == {"step": top["step"], "metric": "eval_chrf", "value": top["eval_chrf"], "restored": False,
                    "inferred": True}


def test_the_best_checkpoint_is_restored_and_its_rescore_equals_the_logged_best(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    # a learning rate this high makes the loss jump around: the best step is rarely the last
    overrides = [*EVERY_STEP, "training.max_steps=5", "training.learning_rate=0.3", "training.metric_for_best_model=eval_loss",
                 "training.load_best_model_at_end=true", "eval.baseline=false"]
    assert main(["train", str(recipe), *overrides]) == 0
    run = only_run(tmp_path)
    record = record_of(run)
    losses = {entry["step"]: entry["eval_loss"] for entry in evaluations(record)}
    best_step = min(losses, key=losses.get)
    assert record.best == {"step": best_step, "metric": "eval_loss", "value": losses[best_step], "restored": True}
    assert record.final.metrics["eval_loss"] == pytest.approx(record.best["value"], abs=1e-6)  # the same weights
    saved = load_file(run / "adapter" / "adapter_model.safetensors")
    best = load_file(run / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    assert saved.keys() == best.keys() and all((saved[k] == best[k]).all() for k in saved)


def test_greater_is_better_follows_the_metric(tiny_llama, tmp_path):
    from hfkit import job
    from hfkit.recipe import load_recipe

    recipe_path = tiny_recipe(tmp_path, tiny_llama)
    for metric, greater in (("exact_match", True), ("eval_loss", False), ("perplexity", False)):
        recipe = load_recipe(recipe_path, [f"training.metric_for_best_model={metric}"])
        assert job.training_arguments(recipe, job.bind(recipe)).greater_is_better is greater
    recipe = load_recipe(recipe_path, ["training.metric_for_best_model=perplexity", "training.greater_is_better=true"])
    assert job.training_arguments(recipe, job.bind(recipe)).greater_is_better is True  # the recipe's word wins


def test_early_stopping_stops_before_max_steps(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    # an improvement must beat 100 exact-match points: none does, so patience 2 ends the run at step 3
    overrides = [*EVERY_STEP, "training.max_steps=20", "training.metric_for_best_model=exact_match",
                 "training.load_best_model_at_end=true", "training.early_stopping_patience=2",
                 "training.early_stopping_threshold=100", "eval.baseline=false"]
    assert main(["train", str(recipe), *overrides]) == 0
    record = record_of(only_run(tmp_path))
    assert record.train.steps == 3 and [e["step"] for e in evaluations(record)] == [1, 2, 3]
    assert record.best["step"] == 1


@pytest.mark.parametrize("overrides, missing", [
    (["training.early_stopping_patience=2"], "eval_strategy: steps (or epoch); metric_for_best_model"),
    ([*EVERY_STEP, "training.early_stopping_patience=2", "training.metric_for_best_model=eval_loss"],
     "load_best_model_at_end: true"),
    (["training.eval_strategy=steps", "training.eval_steps=2", "training.save_steps=3", "training.save_strategy=steps",
      "training.metric_for_best_model=eval_loss", "training.load_best_model_at_end=true",
      "training.early_stopping_patience=2"], "save_steps a multiple of eval_steps"),
])
def test_what_early_stopping_needs_is_said_in_one_line(tiny_llama, tmp_path, capsys, overrides, missing):
    assert main(["validate", str(tiny_recipe(tmp_path, tiny_llama)), *overrides]) == 2
    err = capsys.readouterr().err
    assert "training.early_stopping_patience: early stopping also needs" in err and missing in err


def test_metric_for_best_model_must_be_a_score_of_the_recipe(tiny_llama, tmp_path, capsys):
    assert main(["validate", str(tiny_recipe(tmp_path, tiny_llama)), "training.metric_for_best_model=sacrebleu"]) == 2
    assert "'sacrebleu' is not a score of this recipe's evaluation" in capsys.readouterr().err


def test_tensorboard_events_hold_train_loss_and_the_generation_metrics(tiny_llama, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "training.report_to=tensorboard", "training.eval_strategy=steps",
                 "training.eval_steps=3", "eval.baseline=false"]) == 0
    (events,) = (only_run(tmp_path) / "tensorboard").rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    tags = accumulator.Tags()["scalars"]
    assert {"train/loss", "eval/exact_match", "eval/loss"} <= set(tags)
    assert [event.step for event in accumulator.Scalars("eval/exact_match")] == [3]


def test_overfitting_is_said_when_validation_loss_rises_while_training_loss_falls():
    from hfkit.training import overfitting_notes

    history = [{"step": 1, "loss": 3.0}, {"step": 1, "eval_loss": 2.0}, {"step": 2, "loss": 2.0},
               {"step": 2, "eval_loss": 2.1}, {"step": 3, "loss": 1.0}, {"step": 3, "eval_loss": 2.3}]
    (note,) = overfitting_notes(history)
    assert "validation loss rose over the last 3 evaluations" in note and "2.0000 -> 2.3000" in note
    assert overfitting_notes([*history[:-1], {"step": 3, "eval_loss": 1.9}]) == []


def test_periodic_predictions_are_not_written_but_the_final_ones_are(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    assert main(["train", str(recipe), "training.eval_strategy=steps", "training.eval_steps=1", "eval.baseline=false"]) == 0
    run = only_run(tmp_path)
    assert len(jsonl(run / "predictions.jsonl")) == 6 and not (run / "predictions.partial.jsonl").exists()


def test_resume_keeps_the_best_checkpoint_and_early_stopping_state(tiny_llama, tmp_path):
    """Killed after step 2 and resumed, the run stops where an uninterrupted one does (step 3, patience 2
    counted across the interruption) and keeps the best step found before the kill."""
    recipe = tiny_recipe(tmp_path, tiny_llama)
    overrides = [*EVERY_STEP, "training.max_steps=20", "training.metric_for_best_model=exact_match",
                 "training.load_best_model_at_end=true", "training.early_stopping_patience=2",
                 "training.early_stopping_threshold=100", "eval.baseline=false"]
    died = killed_at(3, ["train", str(recipe), *overrides], tmp_path)  # checkpoint-2 is complete, step 3's is not
    assert died.returncode < 0, died.stderr[-2000:]
    run = only_run(tmp_path)
    assert main(["train", "--resume", str(run)]) == 0
    record = record_of(run)
    assert record.train.steps == 3 and record.train.resumed_from == "checkpoint-2"
    assert record.best["step"] == 1 and record.best["restored"]
