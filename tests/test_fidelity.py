"""Numbers that do not move: batch size, dtype path and command leave scores alone; eval data untouched."""

from pathlib import Path

import pytest
from datasets import Dataset
from support import jsonl, record_of, tiny_recipe, write_jsonl

from hfkit import job
from hfkit.cli import main
from hfkit.recipe import load_recipe
from hfkit.scoring import Scorer
from hfkit.tasks import EvalExamples, bind

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.mark.slow
def test_real_smollm2_bf16_lora_scores_the_same_at_any_eval_batch_size_and_from_either_command(tmp_path):
    """SmolLM2 under LoRA trains on a bf16 base; batched bf16 decoding changed 27 of 60 translation
    predictions between eval batch 30 and 1. Scoring computes in fp32, so batch 1, 5 and 12 agree,
    and `hfkit eval RECIPE` reproduces the baseline scored inside `hfkit train`."""
    recipe_path = RECIPES / "translation" / "demo.yaml"
    common = ["data.max_eval_samples=12", "generation.max_new_tokens=16", "training.per_device_eval_batch_size=12"]
    assert main(["train", str(recipe_path), *common, "training.max_steps=2", f"output.dir={tmp_path / 'train'}"]) == 0
    (run,) = (tmp_path / "train").iterdir()
    trained = record_of(run)
    assert trained.model_dtype == "bfloat16" and trained.final.dtype == "float32"

    assert main(["eval", str(recipe_path), *common, f"output.dir={tmp_path / 'eval'}"]) == 0
    (zero_shot,) = (tmp_path / "eval").iterdir()
    assert record_of(zero_shot).baseline.metrics == trained.baseline.metrics
    assert jsonl(zero_shot / "predictions.jsonl") == jsonl(run / "predictions_baseline.jsonl")

    recipe = load_recipe(run / "recipe.yaml")
    task = job.bind(recipe)
    prepared = job.prepare(recipe, task, str(run / "adapter"), with_train=False)
    model = job.load_model(recipe, task, prepared.tokenizer, weights=run / "adapter", train=False)
    assert str(model.dtype) == "torch.bfloat16"  # the same frozen base as in training
    for batch_size in (1, 5):
        scores = Scorer(task, prepared.tokenizer, prepared.eval, task.collator(prepared.tokenizer, model),
                        batch_size=batch_size, seed=0).score(model)
        assert scores.predictions == jsonl(run / "predictions.jsonl"), f"eval batch {batch_size} differs from 12"
        assert scores.evaluation.metrics["eval_loss"] == pytest.approx(trained.final.metrics["eval_loss"], abs=1e-6)
        assert scores.evaluation.metrics["sacrebleu"] == trained.final.metrics["sacrebleu"]


# References a cleaning step would once have rewritten: NBSP before '?', an ellipsis, full-width CJK
# punctuation, code indentation.
REFERENCES = ["Est-ce vrai\u00a0?", "Attendez\u2026", "你好，世界！", "def f():\n    return 1"]


def test_references_reach_predictions_byte_for_byte_and_duplicates_stay(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    rows = [{"prompt": f"say {i}", "completion": text} for i, text in enumerate(REFERENCES)]
    rows += [rows[0], {"prompt": rows[1]["prompt"], "completion": "another answer"}]  # a duplicate, a same-prompt row
    write_jsonl(tmp_path / "validation.jsonl", rows)
    assert main(["train", str(recipe), "training.max_steps=1"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    predictions = jsonl(run / "predictions.jsonl")
    assert [p["reference"] for p in predictions] == [r["completion"] for r in rows]
    assert [p["input"] for p in predictions] == [r["prompt"] for r in rows]
    assert len({p["id"] for p in predictions}) == len(rows)  # a repeated row gets an id of its own
    assert record_of(run).eval_examples == len(rows) == record_of(run).final.examples


def test_same_question_text_with_other_ids_and_answers_stays_in_the_eval_set(tmp_path):
    context = "Anna was born in Lisbon. Tom was born in Oslo."
    rows = [{"id": "a", "question": "Where was she born?", "context": context,
             "answers": {"text": ["Lisbon"], "answer_start": [17]}},
            {"id": "b", "question": "Where was she born?", "context": context,
             "answers": {"text": ["Oslo"], "answer_start": [41]}}]
    write_jsonl(tmp_path / "v.jsonl", rows)
    write_jsonl(tmp_path / "t.jsonl", [{"id": "t", "question": "Who was born in Oslo?", "context": context,
                                        "answers": {"text": ["Tom"], "answer_start": [25]}}])
    (tmp_path / "r.yaml").write_text("task: qa\nmodel: {name_or_path: m}\n"
                                     "data: {train_file: t.jsonl, validation_file: v.jsonl}\n", encoding="utf-8")
    recipe = load_recipe(tmp_path / "r.yaml")
    splits, _ = job.load_data(recipe, bind(recipe, encoder_decoder=False))
    assert splits["validation"]["id"] == ["a", "b"]


def test_extractive_squad_v2_passes_its_no_answer_probability():
    recipe = load_recipe_text("task: qa\nmodel: {name_or_path: m}\ndata: {train_file: t.jsonl}\n"
                              "qa: {version_2_with_negative: true}\n")
    task = bind(recipe)
    references = [{"id": "1", "answers": {"text": ["x"], "answer_start": [0]}},
                  {"id": "2", "answers": {"text": [], "answer_start": []}}]
    examples = EvalExamples(prompts=[], references=references, sources=["q1", "q2"], ids=["1", "2"])
    predictions, _ = task.metric_inputs(["x", "y"], examples, {"no_answer_probability": [0.1, 0.9]})
    assert [p["no_answer_probability"] for p in predictions] == [0.1, 0.9]
    from hfkit import metrics

    scores = metrics.load("squad_v2").compute(predictions=predictions, references=references)
    # thresholded at the no-answer probability, the second question says "no answer": both right
    assert scores["exact"] == 50.0 and scores["best_exact"] == 100.0 and 0.1 <= scores["best_exact_thresh"] < 0.9


@pytest.mark.parametrize("said, setting, empty", [("Unanswerable.", None, True), ("unanswerable", None, True),
                                                  ("no answer", "No answer", True), ("Lisbon", None, False)])
def test_generative_v2_recognises_its_no_answer_text(said, setting, empty):
    qa = "{mode: generative, version_2_with_negative: true" + (f", no_answer_text: {setting!r}" if setting else "") + "}"
    recipe = load_recipe_text(f"task: qa\nmodel: {{name_or_path: m}}\ndata: {{train_file: t.jsonl}}\nqa: {qa}\n")
    task = bind(recipe, encoder_decoder=False)
    examples = EvalExamples(prompts=[[1]], references=[{"id": "1", "answers": {"text": [], "answer_start": []}}],
                            sources=["q"], ids=["1"])
    (prediction,), _ = task.metric_inputs([said], examples, {})
    assert (prediction["prediction_text"] == "") == empty and prediction["no_answer_probability"] == float(empty)
    target = task.pairs(Dataset.from_list([{"id": "1", "question": "q", "context": "c",
                                            "answers": {"text": [], "answer_start": []}}]), "chat")[0]["target"]
    assert target == (setting or "unanswerable")


def load_recipe_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.yaml"
        path.write_text(text, encoding="utf-8")
        return load_recipe(path)
