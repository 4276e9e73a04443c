"""Evaluation is complete or says so; every recipe combination scores or refuses up front; text is
scored as written; data files are read by the type the recipe states."""

import json
import os

import pytest
from datasets import Dataset
from support import date_rows, make_tiny_bert, make_tiny_seq2seq, make_tokenizer, record_of, tiny_recipe, write_jsonl

from hfkit import job, tasks
from hfkit.cli import main
from hfkit.data import load_file
from hfkit.errors import HfkitError
from hfkit.models import load_tokenizer, model_family
from hfkit.recipe import load_recipe
from hfkit.schema import ModelSection, Recipe

LONG = "a longer answer that does not fit " * 4  # 88 tokens of the tiny tokenizer


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    make_tokenizer().save_pretrained(folder)
    return load_tokenizer(str(folder), ModelSection(name_or_path="m"))


def generation_task(**data):
    recipe = Recipe.model_validate({"task": "generation", "model": {"name_or_path": "m"},
                                    "data": {"train_file": "t.jsonl", **data}, "generation": {"max_new_tokens": 8}})
    return tasks.bind(recipe, encoder_decoder=False)


# 1. Evaluation is complete or it says so --------------------------------------------------------------
def test_an_eval_example_longer_than_max_length_keeps_its_whole_target_in_the_loss(tokenizer):
    rows = [{"prompt": "short", "completion": "ok"}, {"prompt": "word " * 60, "completion": LONG}]
    task = generation_task(max_length=24)
    evaluated = task.tokenize(Dataset.from_list(rows), tokenizer, "validation")
    assert evaluated.counts == {"examples": 2, "prompt_truncated": 1, "beyond_max_length": 1}
    long = evaluated.dataset[1]
    target = tokenizer(LONG, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert long["labels"] == [-100] * 16 + target  # the prompt cut to 24 - 8 (max_new_tokens), as generation cuts it
    assert long["input_ids"][:16] == task.eval_examples(Dataset.from_list(rows), tokenizer).prompts[1]
    # the same example in training data is dropped, counted, and the length that keeps 95% is known
    trained = task.tokenize(Dataset.from_list(rows), tokenizer, "train")
    assert len(trained.dataset) == 1 and trained.counts["target_too_long"] == 1 and trained.keeps_95 == len(target) + 1


def test_an_eval_target_longer_than_the_model_takes_is_refused_not_dropped(tokenizer):
    rows = [{"prompt": "p", "completion": "word " * 300}]  # the tiny tokenizer's model_max_length is 256
    with pytest.raises(HfkitError, match=r"1 of 1 validation examples have a target longer than the model takes "
                                         r"\(256 tokens\); evaluation data is never dropped"):
        generation_task(max_length=24).tokenize(Dataset.from_list(rows), tokenizer, "validation")


def test_no_room_for_any_prompt_names_the_split_and_the_lengths(tokenizer):
    with pytest.raises(HfkitError, match=r"data.max_length: 8 tokens leave no room for a prompt before any target of "
                                         r"the train split \(its targets with EOS are \d+-\d+ tokens\); raise it to at least"):
        generation_task(max_length=8).tokenize(Dataset.from_list([{"prompt": "p", "completion": LONG}]), tokenizer,
                                               "train")


def test_an_encoder_decoder_eval_target_over_max_target_length_stays_whole(tmp_path):
    model = make_tiny_seq2seq(tmp_path / "t5", "t5")
    recipe = Recipe.model_validate({"task": "summarization", "model": {"name_or_path": str(model)},
                                    "data": {"train_file": "t.jsonl", "max_target_length": 8}})
    task = tasks.bind(recipe)
    tokenizer = load_tokenizer(str(model), recipe.model)
    rows = task.convert(Dataset.from_list([{"document": "a", "summary": "word " * 20}]))
    evaluated = task.tokenize(rows, tokenizer, "validation")
    assert evaluated.counts == {"examples": 1, "prompt_truncated": 0, "beyond_max_length": 1}
    assert evaluated.dataset[0]["labels"] == tokenizer(text_target="word " * 20)["input_ids"] + [tokenizer.eos_token_id]
    with pytest.raises(HfkitError, match="every target of the train split is longer than 8 tokens; raise it"):
        task.tokenize(rows, tokenizer, "train")  # training would drop it


def test_every_eval_example_is_counted_in_every_number_and_overrides_say_what_they_left(tiny_llama, tmp_path, capsys,
                                                                                          monkeypatch):
    """A recipe whose max_length the data outgrows (as the translation demo's 128 on real WMT pairs):
    every eval example is in the loss, training drops are warned with the max_length that keeps 95%,
    an overridden train_file says which validation data is scored, and the in-train baseline is the
    checkpoint's fp32 model that `hfkit eval RECIPE` scores, though LoRA trains a bf16 base."""
    monkeypatch.setattr("hfkit.lora.bf16_is_native", lambda: True)  # the bf16 path, on any CPU
    recipe = tiny_recipe(tmp_path, tiny_llama)  # max_length 64, max_new_tokens 6
    validation = date_rows(4, offset=1000) + [{"prompt": f"say it {i}", "completion": LONG} for i in range(2)]
    write_jsonl(tmp_path / "validation.jsonl", validation)
    write_jsonl(tmp_path / "other_train.jsonl", date_rows(20) + [{"prompt": f"long {i}", "completion": LONG}
                                                                 for i in range(5)])
    override = f"data.train_file={tmp_path / 'other_train.jsonl'}"
    assert main(["validate", str(recipe), override]) == 0
    said = capsys.readouterr().out
    assert "warning: data.max_length: 5 of 25 training examples (20%) were dropped" in said
    assert "data.max_length=" in said and "would keep 95% of them" in said
    assert "warning: data.train_file was set on the command line, data.validation_file was not" in said

    assert main(["train", str(recipe), override]) == 0
    out = capsys.readouterr().out
    (run,) = (tmp_path / "runs").iterdir()
    record = record_of(run)
    for scored in (record.baseline, record.final):
        assert scored.examples == scored.loss_examples == record.eval_examples == 6
    assert record.data["preparation"]["validation"]["beyond_max_length"] == 2
    assert record.eval_data == "validation.jsonl" and record.dataset == "other_train.jsonl"
    assert any(note.startswith("data.max_length: 5 of 25 training examples (20%) were dropped") for note in record.notes)
    assert any("data.validation_file was not: the validation split is validation.jsonl, from the recipe file" in note
               for note in record.notes)
    printed = " ".join(out.split())
    assert "data.max_length: 5 of 25 training examples (20%) were dropped" in printed
    assert "6 eval examples, scored in float32; loss over 6 examples" in printed
    # the baseline scored the checkpoint's weights; training ran on the bf16 base
    assert record.baseline.model_dtype == "float32" and record.model_dtype == record.final.model_dtype == "bfloat16"
    assert main(["eval", str(recipe), override, f"output.dir={tmp_path / 'zero'}"]) == 0
    (zero,) = (tmp_path / "zero").iterdir()
    assert record_of(zero).baseline.metrics == record.baseline.metrics
    assert (zero / "predictions.jsonl").read_text() == (run / "predictions_baseline.jsonl").read_text()
    # compare names both data sets
    capsys.readouterr()
    assert main(["compare", str(run), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["runs"][0]
    assert shown["dataset"] == "train other_train.jsonl, eval validation.jsonl"


# 2. Every recipe combination scores or refuses up front --------------------------------------------------
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


QA_CONTEXT = "Anna Keller was born in Lisbon in 1987. Tom plays the violin in Oslo."


def squad_document(version: str, unanswerable: bool) -> dict:
    qas = [{"id": q, "question": question, "answers": [{"text": text, "answer_start": QA_CONTEXT.index(text)}]}
           for q, question, text in (("a", "Where was Anna born?", "Lisbon"), ("b", "What does Tom play?", "the violin"))]
    if unanswerable:
        qas.append({"id": "c", "question": "Where was Tom born?", "answers": [], "is_impossible": True})
    return {"version": version, "data": [{"title": "t", "paragraphs": [{"context": QA_CONTEXT, "qas": qas}]}]}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("bert"))


def qa_recipe(folder, model, extra=""):
    return write(folder / "qa.yaml", f"task: qa\nmodel: {{name_or_path: {model}}}\n"
                                     "data: {train_file: squad.json, validation_file: squad.json, "
                                     "clean: {decontaminate: false}}\n"
                                     f"qa: {{max_seq_length: 48, doc_stride: 16}}\ntraining: {{max_steps: 1}}\n"
                                     f"output: {{dir: {folder / 'runs'}}}\n{extra}")


def test_squad_on_squad_v2_data_is_refused_before_training_with_the_fix(tiny_bert, tmp_path, capsys):
    write(tmp_path / "squad.json", json.dumps(squad_document("v2.0", unanswerable=True)))
    recipe = qa_recipe(tmp_path, tiny_bert, "eval: {metrics: [squad]}\n")
    for command in ("validate", "train"):
        assert main([command, str(recipe)]) == 2
        err = capsys.readouterr().err
        assert "eval.metrics: squad scores SQuAD v1.1, where every question has an answer, but the" in err
        assert "use squad_v2 (eval.metrics: [squad_v2])" in err and "Traceback" not in err
    assert not list((tmp_path / "runs").glob("*/adapter"))  # nothing trained
    # set in the recipe, the same mistake is found without reading the data
    with pytest.raises(HfkitError, match="qa.version_2_with_negative is true; use squad_v2"):
        load_recipe(recipe, ["qa.version_2_with_negative=true"])


def test_the_squad_files_own_version_sets_version_2_when_the_recipe_leaves_it_unset(tiny_bert, tmp_path, capsys):
    write(tmp_path / "squad.json", json.dumps(squad_document("v2.0", unanswerable=False)))
    recipe = load_recipe(qa_recipe(tmp_path, tiny_bert))
    task = job.bind(recipe)
    job.load_data(recipe, task)
    assert recipe.qa.version_2_with_negative is True and task.metric_names() == ["squad_v2"]
    assert task.data_notes == ["qa.version_2_with_negative: true, as squad.json says \"version\": 'v2.0'"]
    assert main(["validate", str(qa_recipe(tmp_path, tiny_bert))]) == 0
    assert "warning: qa.version_2_with_negative: true, as squad.json says" in capsys.readouterr().out
    # a v1.1 file leaves it off; the recipe's own setting always wins
    write(tmp_path / "squad.json", json.dumps(squad_document("1.1", unanswerable=False)))
    recipe = load_recipe(qa_recipe(tmp_path, tiny_bert))
    job.load_data(recipe, job.bind(recipe))
    assert recipe.qa.version_2_with_negative is False


@pytest.mark.parametrize("task, extra, message", [
    ("generation", "data: {train_file: t.jsonl, format: text}\neval: {metrics: [exact_match]}",
     "eval.metrics: format text is scored by eval_loss and perplexity only (nothing is generated), so exact_match "
     "would score nothing; set eval.metrics: []"),
    ("generation", "data: {train_file: t.jsonl, format: text, chat_template: true}",
     "data.chat_template: format text is packed into blocks as it is, no chat template applies"),
    ("qa", "data: {train_file: t.jsonl}\neval: {metrics: [sacrebleu]}",
     "eval.metrics: sacrebleu cannot score task qa (squad), whose references are SQuAD answers ({id, answers}); "
     "use squad, squad_v2"),
    ("qa", "data: {train_file: t.jsonl}\nqa: {mode: generative}\neval: {metrics: [rouge]}",
     "eval.metrics: rouge cannot score task qa"),
    ("translation", "data: {train_file: t.jsonl, source_lang: en, target_lang: fr}\neval: {metrics: [squad]}",
     "eval.metrics: squad cannot score task translation (pairs), whose references are text; use sacrebleu, chrf, "
     "ter, rouge, exact_match"),
])
def test_a_metric_that_cannot_score_the_task_is_refused_by_the_recipe(tmp_path, task, extra, message):
    path = write(tmp_path / "r.yaml", f"task: {task}\nmodel: {{name_or_path: m}}\n{extra}\n")
    with pytest.raises(HfkitError) as err:
        load_recipe(path)
    assert message in str(err.value)


# 5. model_family ----------------------------------------------------------------------------------------
def test_model_family_says_encoder_for_an_encoder(tiny_bert, tiny_llama, tmp_path):
    assert model_family(ModelSection(name_or_path=str(tiny_bert))) == "encoder"
    assert model_family(ModelSection(name_or_path=str(tiny_llama))) == "decoder-only"
    assert model_family(ModelSection(name_or_path=str(make_tiny_seq2seq(tmp_path / "bart", "bart")))) == "encoder-decoder"


# 6. Files without an extension, behind a link -------------------------------------------------------------
def test_a_hub_cache_blob_behind_a_symlink_is_read_by_the_links_name(tmp_path):
    blobs, snapshot = tmp_path / "blobs", tmp_path / "snapshots"
    blobs.mkdir()
    snapshot.mkdir()
    write_jsonl(blobs / "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", date_rows(3))  # a hash-named blob
    (snapshot / "train.jsonl").symlink_to(blobs / "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b")
    assert load_file(snapshot / "train.jsonl", "data.train_file").to_list() == date_rows(3)
    # a link without an extension reads its target's name; a blob itself needs data.file_type
    (snapshot / "train").symlink_to(snapshot / "train.jsonl")
    assert len(load_file(snapshot / "train", "data.train_file")) == 3
    blob = blobs / "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
    with pytest.raises(HfkitError, match=r"data.train_file: cannot tell how to read .*9f86d0.* has no extension hfkit "
                                         r"knows \(.json, .jsonl, .csv, .parquet, .txt\); set data.file_type to json"):
        load_file(blob, "data.train_file")
    assert len(load_file(blob, "data.train_file", file_type="jsonl")) == 3


def test_file_type_from_the_recipe_reads_an_extensionless_csv(tmp_path):
    write(tmp_path / "blob", "prompt,completion\nhello,world\n")
    write_jsonl(tmp_path / "v.jsonl", date_rows(2))
    recipe = load_recipe(write(tmp_path / "r.yaml", "task: generation\nmodel: {name_or_path: m}\n"
                                                    "data: {train_file: blob, validation_file: v.jsonl, file_type: csv}\n"))
    assert recipe.data.file_type == "csv"
    splits, _ = job.load_data(recipe, tasks.bind(recipe, encoder_decoder=False))
    assert splits["train"].to_list() == [{"prompt": "hello", "completion": "world"}]
    with pytest.raises(HfkitError, match="data.file_type: Input should be 'json', 'jsonl', 'csv', 'parquet' or 'txt'"):
        load_recipe(tmp_path / "r.yaml", ["data.file_type=xml"])


def test_a_dangling_link_and_a_fifo_get_one_clear_line(tmp_path):
    (tmp_path / "gone.jsonl").symlink_to(tmp_path / "missing-blob")
    with pytest.raises(HfkitError, match=r"data.train_file: .*gone.jsonl is a symbolic link to .*missing-blob, which "
                                         r"does not exist"):
        load_file(tmp_path / "gone.jsonl", "data.train_file")
    os.mkfifo(tmp_path / "pipe.jsonl")
    with pytest.raises(HfkitError, match=r"data.train_file: .*pipe.jsonl is a FIFO, not a regular file"):
        load_file(tmp_path / "pipe.jsonl", "data.train_file")


# 7. Text is scored as written ---------------------------------------------------------------------------------
SPACED = [" 2021-03-05", "tabs\tand trailing  ", "  indented\n    code"]


def test_references_keep_their_whitespace_in_every_task(tokenizer, tmp_path):
    rows = [{"prompt": f"p{i}", "completion": text} for i, text in enumerate(SPACED)]
    assert generation_task().eval_examples(Dataset.from_list(rows), tokenizer).references == SPACED
    for task_name, data, fields in (("translation", {"source_lang": "en", "target_lang": "fr"}, ("source", "target")),
                                    ("summarization", {}, ("document", "summary"))):
        recipe = tasks.task_class(task_name).recipe_class.model_validate(
            {"task": task_name, "model": {"name_or_path": "m"}, "data": {"train_file": "t.jsonl", "format": "pairs", **data}})
        for encoder_decoder in (False, True):
            task = tasks.bind(recipe, encoder_decoder=encoder_decoder)
            ds = task.convert(Dataset.from_list([{fields[0]: f"s{i}", fields[1]: t} for i, t in enumerate(SPACED)]))
            assert task.eval_examples(ds, tokenizer).references == SPACED, (task_name, encoder_decoder)
    context = "Born in  Lisbon  , she said."
    answer = {"text": ["  Lisbon  "], "answer_start": [7]}
    qa_rows = Dataset.from_list([{"id": "1", "question": " Where? ", "context": context, "answers": answer}])
    for mode in ("extractive", "generative"):
        recipe = load_recipe(write(tmp_path / "q.yaml", f"task: qa\nmodel: {{name_or_path: m}}\n"
                                                        f"data: {{train_file: t.jsonl}}\nqa: {{mode: {mode}}}\n"))
        task = tasks.bind(recipe, encoder_decoder=False)
        (reference,) = task.eval_examples(task.convert(qa_rows), tokenizer).references
        assert reference["answers"]["text"] == ["  Lisbon  "]


class _Says:
    """A stand-in decoder-only model whose every answer is the token ids it was given."""

    def __init__(self, answer_ids):
        import torch

        self.answer, self.config = torch.tensor(answer_ids), type("C", (), {"is_encoder_decoder": False})()
        self.generation_config = type("G", (), {"eos_token_id": None, "bos_token_id": None,
                                                "decoder_start_token_id": None})()
        self.device, self.training = "cpu", False

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def generate(self, input_ids, **kwargs):
        import torch

        return torch.cat([input_ids, self.answer.expand(len(input_ids), -1)], dim=1)


def test_a_prediction_is_scored_as_decoded_so_a_spaced_completion_can_match(tokenizer):
    from hfkit import metrics
    from hfkit.generation import generate
    from hfkit.schema import GenerationSection

    answer_ids = tokenizer(" 2021-03-05", add_special_tokens=False)["input_ids"]
    (said,) = generate(_Says(answer_ids), tokenizer, [tokenizer("Date:")["input_ids"]], GenerationSection(), 1, 0)
    assert said == " 2021-03-05"  # nothing stripped, as nothing is stripped from the reference
    assert metrics.compute(["exact_match"], [said], [" 2021-03-05"])[0] == {"exact_match": 1.0}
