"""Translation and summarization: tiny T5 and BART end to end, bert2bert, the decoder-only path."""

import json

import pytest
from datasets import Dataset
from support import jsonl, make_tiny_seq2seq, make_tokenizer, record_of, write_jsonl

from hfkit import tasks
from hfkit.cli import main
from hfkit.errors import HfkitError
from hfkit.models import load_tokenizer
from hfkit.recipe import load_recipe
from hfkit.tasks.seq2seq import labels_of

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


def rows_in(run, predictions):
    """The eval split's rows, in the order of predictions.jsonl (the held-out rows of train)."""
    return [{"document": p["input"], "summary": p["reference"]} for p in predictions]


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
    record = record_of(run)
    assert set(record.final.metrics) == {"eval_loss", "perplexity", "sacrebleu", "chrf"}
    assert record.final.details["sacrebleu_signature"].startswith("nrefs:1")
    assert record.train.steps == 3 and record.model_family == "encoder-decoder"
    rows = jsonl(run / "predictions.jsonl")
    assert [r["reference"] for r in rows] == [row["translation"]["fr"] for row in wmt_rows(5, offset=100)]
    assert not (run / "predictions.partial.jsonl").exists()
    assert (run / "adapter" / "adapter_config.json").is_file()
    assert json.loads((run / "adapter" / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    assert main(["eval", str(run)]) == 0
    (scored,) = run.glob("eval-*")
    assert record_of(scored).final.metrics == pytest.approx(record.final.metrics, rel=1e-6)


def test_tiny_bart_summarization_with_mapped_columns(tmp_path):
    model = make_tiny_seq2seq(tmp_path / "bart", "bart")
    rows = [{"article": f"{a} and {b}. More text follows here.", "highlights": a}
            for a, b in [("cats sleep", "dogs run"), ("birds sing", "fish swim"), ("rain falls", "sun shines")] * 4]
    write_jsonl(tmp_path / "news.jsonl", rows)
    data = "  train_file: news.jsonl\n  columns: {article: document, highlights: summary}\n  validation_fraction: 0.25"
    recipe = tmp_path / "s.yaml"
    recipe.write_text(recipe_text(tmp_path, "summarization", model, data, "peft: {method: none}"), encoding="utf-8")
    assert main(["train", str(recipe)]) == 0
    record = record_of(run_folder(tmp_path))
    assert {"rouge1", "rouge2", "rougeL", "rougeLsum"} <= set(record.final.metrics)
    assert record.method == "none" and (run_folder(tmp_path) / "model" / "model.safetensors").is_file()


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
    record = record_of(run)
    assert record.model == "minilm-l6+minilm-l6" and record.train.steps == 2
    assert 45_000_000 < record.parameters["total"] < 70_000_000  # two MiniLMs plus cross-attention
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["decoder_start_token_id"] == 101 and config["eos_token_id"] == 102 and config["pad_token_id"] == 0
    rows = jsonl(run / "predictions.jsonl")
    assert len(rows) == 3 and all(r["prediction"] != r["reference"] or r["prediction"] for r in rows)
    assert main(["eval", str(run)]) == 0  # the saved EncoderDecoderModel loads back
    # labels never start with [CLS], the token decoding starts from; they end with [SEP]
    recipe = load_recipe(run / "recipe.yaml")
    task = tasks.bind(recipe, encoder_decoder=True)
    tokenizer = load_tokenizer(str(run / "model"), recipe.model)
    tokenized = task.tokenize(task.convert(Dataset.from_list(rows_in(run, rows))), tokenizer, "validation").dataset
    assert all(row["labels"][0] != 101 and row["labels"][-1] == 102 for row in tokenized)


def test_decoder_only_translation_masks_the_prompt(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "t.jsonl", wmt_rows(4))
    recipe = load_recipe(_write(tmp_path / "d.yaml", recipe_text(
        tmp_path, "translation", tiny_llama,
        "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: fr")))
    task = tasks.bind(recipe)
    assert task.auto_model == "AutoModelForCausalLM" and task.trainer_class().__name__ == "Trainer"
    tokenizer = load_tokenizer(str(tiny_llama), recipe.model)
    pairs = task.convert(Dataset.from_list(wmt_rows(2)))
    row = task.tokenize(pairs, tokenizer, "train").dataset[0]
    # the tiny tokenizer has a chat template, so the prompt is a rendered user turn
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Translate from English to French:\nthe cat sleeps 0"}],
        add_generation_prompt=True, tokenize=False)
    n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    target = tokenizer("le chat dort 0", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert row["labels"] == [-100] * n + target
    inputs = task.eval_examples(pairs, tokenizer)
    assert inputs.sources[0] == "the cat sleeps 0" and inputs.references[0] == "le chat dort 0"


def test_without_a_chat_template_the_prompt_ends_with_a_cue_the_target_follows(tmp_path):
    """A base model (GPT-2, base Llama) must not train on '...sleeps 0le chat dort 0'."""
    folder = tmp_path / "plain"
    make_tokenizer(chat_template=False).save_pretrained(folder)
    recipe = load_recipe(_write(tmp_path / "p.yaml", recipe_text(
        tmp_path, "translation", "m", "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: fr")))
    task = tasks.bind(recipe, encoder_decoder=False)
    tokenizer = load_tokenizer(str(folder), recipe.model)
    pairs = task.convert(Dataset.from_list(wmt_rows(1)))
    row = task.tokenize(pairs, tokenizer, "train").dataset[0]
    text = tokenizer.decode(row["input_ids"])
    assert text == "Translate from English to French:\nthe cat sleeps 0\nFrench:\nle chat dort 0</s>"
    answer = tokenizer.decode([t for t in row["labels"] if t != -100])
    assert answer == "le chat dort 0</s>"
    (prompt,) = task.eval_examples(pairs, tokenizer).prompts  # generation sees the same prompt
    assert tokenizer.decode(prompt) == "Translate from English to French:\nthe cat sleeps 0\nFrench:\n"


def test_encoder_decoder_family_comes_from_the_config(tiny_seq2seq, tiny_llama, tmp_path):
    for model, expected in ((tiny_seq2seq, "Seq2SeqTrainer"), (tiny_llama, "Trainer")):
        recipe = load_recipe(_write(tmp_path / "x.yaml", recipe_text(
            tmp_path, "summarization", model, "  train_file: x.jsonl")))
        assert tasks.bind(recipe).trainer_class().__name__ == expected


def test_wmt_languages_must_exist(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", wmt_rows(2))
    recipe = load_recipe(_write(tmp_path / "w.yaml", recipe_text(
        tmp_path, "translation", "m", "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: de")))
    with pytest.raises(HfkitError, match="data.target_lang: 'de' is not a key of the translation column .*en, fr"):
        tasks.bind(recipe, encoder_decoder=False).convert(Dataset.from_list(wmt_rows(2)))
    with pytest.raises(HfkitError, match="translation needs both"):
        load_recipe(_write(tmp_path / "v.yaml", recipe_text(tmp_path, "translation", "m", "  train_file: t.jsonl")))


def test_prediction_settings_live_in_the_generation_section(tmp_path):
    text = recipe_text(tmp_path, "summarization", "m", "  train_file: x.jsonl").replace(
        "max_steps: 3,", "max_steps: 3, predict_with_generate: true,")
    with pytest.raises(HfkitError, match="training.predict_with_generate: not accepted; hfkit always generates"):
        load_recipe(_write(tmp_path / "p.yaml", text))


def test_labels_end_in_exactly_one_eos_and_never_start_with_the_decoder_start():
    assert labels_of([5, 6, 7], 2, None) == [5, 6, 7, 2]
    assert labels_of([5, 6, 7, 2], 2, None) == [5, 6, 7, 2]
    assert labels_of([5, 6, 2, 9], 2, None) == [5, 6, 2, 9]  # mBART: text </s> [lang code]
    assert labels_of([101, 5, 102], 102, 101) == [5, 102]  # bert2bert: [CLS] text [SEP] -> text [SEP]
    assert labels_of([5, 6], None, None) == [5, 6]


def test_a_target_longer_than_max_target_length_is_dropped_and_counted_never_cut(tmp_path):
    model = make_tiny_seq2seq(tmp_path / "t5", "t5")
    recipe = load_recipe(_write(tmp_path / "s.yaml", recipe_text(
        tmp_path, "summarization", model, "  train_file: x.jsonl\n  max_target_length: 8\n  max_source_length: 12")))
    task = tasks.bind(recipe)
    tokenizer = load_tokenizer(str(model), recipe.model)
    rows = [{"document": "the quick brown fox " * 10, "summary": "fox"}, {"document": "a", "summary": "word " * 20}]
    tokenized = task.tokenize(task.convert(Dataset.from_list(rows)), tokenizer, "train")
    assert tokenized.counts == {"examples": 2, "prompt_truncated": 1, "target_too_long": 1}
    (row,) = tokenized.dataset
    source = tokenizer(rows[0]["document"])["input_ids"]
    assert row["input_ids"] == source[:6] + source[-6:]  # cut in the middle: its start and its end stay
    assert row["labels"] == tokenizer(text_target="fox")["input_ids"] + [tokenizer.eos_token_id]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["mbart-50", "mbart"])
def test_multilingual_tokenizers_get_language_codes_and_generation_starts_in_the_target_language(tmp_path, kind):
    from transformers import MBart50Tokenizer, MBartConfig, MBartForConditionalGeneration, MBartTokenizer

    from hfkit.generation import generation_config

    tokenizer_class = MBart50Tokenizer if kind == "mbart-50" else MBartTokenizer
    folder = tmp_path / kind
    tokenizer = tokenizer_class()
    config = MBartConfig(vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                         max_position_embeddings=64, pad_token_id=tokenizer.pad_token_id)
    MBartForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    rows = [{"translation": {"en": f"hello {i}", "ro": f"salut {i}"}} for i in range(4)]
    write_jsonl(tmp_path / "t.jsonl", rows)
    data = ("  train_file: t.jsonl\n  validation_file: t.jsonl\n  format: wmt\n  source_lang: en_XX\n  target_lang: ro_RO\n"
            "  max_source_length: 32\n  max_target_length: 32")
    recipe = load_recipe(_write(tmp_path / "m.yaml", recipe_text(tmp_path, "translation", folder, data)))
    task = tasks.bind(recipe)
    from hfkit import job

    loaded = job.load_tokenizer(task, str(folder))
    en, ro = loaded.convert_tokens_to_ids("en_XX"), loaded.convert_tokens_to_ids("ro_RO")
    row = task.tokenize(task.convert(Dataset.from_list(rows)), loaded, "train").dataset[0]
    settings = task.generation_settings(loaded)
    if kind == "mbart-50":  # [code] text </s> on both sides; the first generated token is forced
        assert row["input_ids"][0] == en and row["labels"][0] == ro and settings == {"forced_bos_token_id": ro}
    else:  # text </s> [code]; decoding starts at the target code
        assert row["input_ids"][-1] == en and row["labels"][-1] == ro and settings == {"decoder_start_token_id": ro}
    model = MBartForConditionalGeneration.from_pretrained(folder)
    chosen = generation_config(model, loaded, recipe.generation, settings)
    assert getattr(chosen, next(iter(settings))) == ro
    assert main(["train", str(tmp_path / "m.yaml"), "peft.method=none", "data.clean.decontaminate=false"]) == 0


def test_a_language_code_the_tokenizer_lacks_is_a_clear_error(tmp_path):
    from transformers import MBart50Tokenizer

    MBart50Tokenizer().save_pretrained(tmp_path / "tok")
    write_jsonl(tmp_path / "t.jsonl", wmt_rows(2))
    recipe = load_recipe(_write(tmp_path / "x.yaml", recipe_text(
        tmp_path, "translation", "m", "  train_file: t.jsonl\n  format: wmt\n  source_lang: en\n  target_lang: fr")))
    from hfkit import job

    with pytest.raises(HfkitError, match=r"data.source_lang: 'en' is not a language code of MBart50Tokenizer.*"
                                         r"data.source_lang_code"):
        job.load_tokenizer(tasks.bind(recipe, encoder_decoder=True), str(tmp_path / "tok"))
