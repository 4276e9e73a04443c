"""Translation and summarization: tiny T5 and BART end to end, bert2bert, the decoder-only path."""

import json

import pytest
from datasets import Dataset
from support import make_tiny_seq2seq, write_jsonl

from hfkit import tasks
from hfkit.cli import main
from hfkit.errors import HfkitError
from hfkit.models import load_tokenizer
from hfkit.recipe import load_recipe
from hfkit.tasks.text2text import ending_in_eos

SENTENCES = [("the cat sleeps", "le chat dort"), ("the dog runs", "le chien court"), ("hello world", "bonjour monde"),
             ("the quick fox", "le renard rapide"), ("good morning", "bonjour"), ("the brown dog", "le chien brun")]


def wmt_rows(count, offset=0):
    return [{"translation": {"en": f"{en} {i}", "fr": f"{fr} {i}"}}
            for i, (en, fr) in ((i, SENTENCES[i % len(SENTENCES)]) for i in range(offset, offset + count))]


def recipe_text(tmp_path, task, model, data, extra=""):
    return f"""\
task: {task}
model: {{name_or_path: {model}}}
data:
{data}
training: {{max_steps: 3, per_device_train_batch_size: 4, per_device_eval_batch_size: 4, learning_rate: 1e-3,
           logging_steps: 1, save_strategy: "no"}}
generation: {{max_new_tokens: 8}}
eval: {{baseline: true}}
output: {{dir: {tmp_path / "runs"}}}
{extra}"""


def run_folder(tmp_path):
    (run,) = (tmp_path / "runs").iterdir()
    return run


@pytest.fixture(scope="module", params=["t5", "bart"])
def tiny_seq2seq(request, tmp_path_factory):
    return make_tiny_seq2seq(tmp_path_factory.mktemp(request.param), request.param)


def test_tiny_seq2seq_translation_end_to_end(tiny_seq2seq, tmp_path):
    write_jsonl(tmp_path / "train.jsonl", wmt_rows(16))
    write_jsonl(tmp_path / "valid.jsonl", wmt_rows(5, offset=100))
    data = ("  train_file: train.jsonl\n  validation_file: valid.jsonl\n  format: wmt\n"
            "  source_lang: en\n  target_lang: fr\n  source_prefix: 'translate English to French: '")
    recipe = tmp_path / "t.yaml"
    recipe.write_text(recipe_text(tmp_path, "translation", tiny_seq2seq, data), encoding="utf-8")
    assert main(["train", str(recipe)]) == 0
    run = run_folder(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["final"]) == {"eval_loss", "perplexity", "sacrebleu", "chrf"}
    assert metrics["details"]["final"]["sacrebleu_signature"].startswith("nrefs:1")
    assert metrics["train"]["steps"] == 3
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert [r["reference"] for r in rows] == [row["translation"]["fr"] for row in wmt_rows(5, offset=100)]
    assert not (run / "predictions.partial.jsonl").exists()
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    assert main(["eval", str(run)]) == 0
    (scored,) = run.glob("eval-*")
    assert json.loads((scored / "metrics.json").read_text())["final"]["chrf"] == pytest.approx(metrics["final"]["chrf"])


def test_tiny_bart_summarization_with_mapped_columns(tmp_path):
    model = make_tiny_seq2seq(tmp_path / "bart", "bart")
    rows = [{"article": f"{a} and {b}. More text follows here.", "highlights": a}
            for a, b in [("cats sleep", "dogs run"), ("birds sing", "fish swim"), ("rain falls", "sun shines")] * 4]
    write_jsonl(tmp_path / "news.jsonl", rows)
    data = "  train_file: news.jsonl\n  columns: {article: document, highlights: summary}\n  validation_fraction: 0.25"
    recipe = tmp_path / "s.yaml"
    recipe.write_text(recipe_text(tmp_path, "summarization", model, data, "peft: {method: none}"), encoding="utf-8")
    assert main(["train", str(recipe)]) == 0
    metrics = json.loads((run_folder(tmp_path) / "metrics.json").read_text())
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(metrics["final"])
    assert metrics["method"] == "none" and (run_folder(tmp_path) / "model" / "model.safetensors").is_file()


def test_bert2bert_from_minilm_builds_trains_and_generates(tmp_path):
    rows = [{"document": f"the story number {i} is about a cat", "summary": f"cat story {i}"} for i in range(12)]
    write_jsonl(tmp_path / "docs.jsonl", rows)
    recipe = tmp_path / "b.yaml"
    recipe.write_text(f"""\
task: summarization
model:
  encoder_decoder: {{encoder: minilm-l6, decoder: minilm-l6}}
data: {{train_file: docs.jsonl, validation_fraction: 0.25, max_source_length: 32, max_target_length: 8}}
peft: {{method: none}}
training: {{max_steps: 2, per_device_train_batch_size: 2, per_device_eval_batch_size: 3, save_strategy: "no"}}
generation: {{max_new_tokens: 6}}
output: {{dir: {tmp_path / "runs"}}}
""", encoding="utf-8")
    assert main(["train", str(recipe)]) == 0
    run = run_folder(tmp_path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == "minilm-l6+minilm-l6" and metrics["train"]["steps"] == 2
    assert 45_000_000 < metrics["parameters"]["total"] < 70_000_000  # two MiniLMs plus cross-attention
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["decoder_start_token_id"] == 101 and config["eos_token_id"] == 102 and config["pad_token_id"] == 0
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(isinstance(r["prediction"], str) for r in rows)
    assert main(["eval", str(run)]) == 0  # the saved EncoderDecoderModel loads back


def test_decoder_only_translation_masks_the_prompt(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "t.jsonl", wmt_rows(4))
    recipe = load_recipe(_write(tmp_path / "d.yaml", recipe_text(
        tmp_path, "translation", tiny_llama,
        "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: fr")))
    task = tasks.for_recipe(recipe)
    assert task.auto_model == "AutoModelForCausalLM" and task.trainer_class().__name__ == "Trainer"
    tokenizer = load_tokenizer(str(tiny_llama), recipe.model)
    pairs = task.convert(Dataset.from_list(wmt_rows(2)), recipe, "wmt")
    row = task.preprocess(pairs, tokenizer, recipe, "wmt")[0]
    # the tiny tokenizer has a chat template, so the prompt is a rendered user turn
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Translate from English to French:\nthe cat sleeps 0"}],
        add_generation_prompt=True, tokenize=False)
    n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    target = tokenizer("le chat dort 0", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert row["labels"] == [-100] * n + target
    inputs = task.generation_inputs(pairs, tokenizer, recipe, "wmt")
    assert inputs.sources[0] == "the cat sleeps 0" and inputs.references[0] == "le chat dort 0"


def test_encoder_decoder_family_comes_from_the_config(tiny_seq2seq, tiny_llama, tmp_path):
    for model, expected in ((tiny_seq2seq, "Seq2SeqTrainer"), (tiny_llama, "Trainer")):
        recipe = load_recipe(_write(tmp_path / "x.yaml", recipe_text(
            tmp_path, "summarization", model, "  train_file: x.jsonl")))
        assert tasks.for_recipe(recipe).trainer_class().__name__ == expected


def test_wmt_languages_must_exist(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", wmt_rows(2))
    recipe = load_recipe(_write(tmp_path / "w.yaml", recipe_text(
        tmp_path, "translation", "m", "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: de")))
    with pytest.raises(HfkitError, match="data.target_lang: 'de' is not a key of the translation column .*en, fr"):
        tasks.get("translation").convert(Dataset.from_list(wmt_rows(2)), recipe, "wmt")
    with pytest.raises(HfkitError, match="translation needs both"):
        load_recipe(_write(tmp_path / "v.yaml", recipe_text(tmp_path, "translation", "m", "  train_file: t.jsonl")))


def test_prediction_settings_live_in_the_generation_section(tmp_path):
    text = recipe_text(tmp_path, "summarization", "m", "  train_file: x.jsonl").replace(
        "max_steps: 3,", "max_steps: 3, predict_with_generate: true,")
    with pytest.raises(HfkitError, match="training.predict_with_generate: not accepted; hfkit always generates"):
        load_recipe(_write(tmp_path / "p.yaml", text))


def test_labels_end_in_exactly_one_eos():
    assert ending_in_eos([5, 6, 7], 2, 10) == [5, 6, 7, 2]
    assert ending_in_eos([5, 6, 7, 2], 2, 10) == [5, 6, 7, 2]
    assert ending_in_eos([5, 6, 7, 8, 2], 2, 3) == [5, 6, 2]
    assert ending_in_eos([5, 6], None, 1) == [5]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path
