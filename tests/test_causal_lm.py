"""The generation task's preprocessing: label masking, EOS, packing, chat formats, collation."""

import pytest
from datasets import Dataset
from support import make_tokenizer

from hfkit.errors import HfkitError
from hfkit.models import load_tokenizer
from hfkit.recipe import Recipe
from hfkit.tasks import get

TASK = get("generation")


def recipe(**data):
    return Recipe.model_validate({"task": "generation", "model": {"name_or_path": "m"},
                                  "data": {"train_file": "t.jsonl", **data}})


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    make_tokenizer().save_pretrained(folder)
    tok = load_tokenizer(str(folder), recipe().model)
    assert tok.pad_token == tok.eos_token == "</s>"  # no pad token: hfkit made pad = eos
    return tok


def test_prompt_tokens_are_masked_and_eos_is_a_target(tokenizer):
    ds = Dataset.from_list([{"prompt": "Write this date: March 5, 2021", "completion": "2021-03-05"}])
    row = TASK.preprocess(ds, tokenizer, recipe(), "prompt_completion")[0]
    prompt_len = len(tokenizer("Write this date: March 5, 2021")["input_ids"])
    target = tokenizer("2021-03-05", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert row["labels"][:prompt_len] == [-100] * prompt_len
    assert row["labels"][prompt_len:] == target
    assert row["input_ids"][prompt_len:] == target
    assert row["labels"][-1] == tokenizer.eos_token_id == tokenizer.pad_token_id


def test_collator_pads_labels_by_position_so_eos_survives(tokenizer):
    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "a much longer prompt", "completion": "c"}]
    tokenized = TASK.preprocess(Dataset.from_list(rows), tokenizer, recipe(), "prompt_completion")
    batch = TASK.collator(tokenizer)([tokenized[0], tokenized[1]])
    short = len(tokenized[0]["input_ids"])
    labels = batch["labels"][0].tolist()
    assert labels[short - 1] == tokenizer.eos_token_id  # the real EOS is still trained
    assert labels[short:] == [-100] * (len(labels) - short)  # padding is not
    assert batch["attention_mask"][0].tolist()[short:] == [0] * (len(labels) - short)


def test_truncation_and_examples_without_target_are_dropped(tokenizer, capsys):
    rows = [{"prompt": "short", "completion": "ok"}, {"prompt": "word " * 200, "completion": "lost"}]
    tokenized = TASK.preprocess(Dataset.from_list(rows), tokenizer, recipe(max_length=16), "prompt_completion")
    assert len(tokenized) == 1 and len(tokenized[0]["input_ids"]) <= 16
    assert "Dropped 1 of 2 examples" in capsys.readouterr().out


def test_chat_template_and_messages_train_on_the_last_assistant_turn(tokenizer):
    pc = TASK.preprocess(Dataset.from_list([{"prompt": "hi", "completion": "hello"}]), tokenizer,
                         recipe(chat_template=True), "prompt_completion")[0]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    msg = TASK.preprocess(Dataset.from_list([{"messages": chat}]), tokenizer, recipe(), "messages")[0]
    assert pc["input_ids"] == msg["input_ids"] and pc["labels"] == msg["labels"]
    prompt = tokenizer("<|user|>hi</s><|assistant|>", add_special_tokens=False)["input_ids"]
    assert msg["input_ids"][:len(prompt)] == prompt
    inputs = TASK.generation_inputs(Dataset.from_list([{"messages": chat}]), tokenizer, recipe(), "messages")
    assert inputs.prompts == [prompt] and inputs.references == ["hello"]


def test_messages_must_end_with_the_assistant(tokenizer):
    chat = [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    with pytest.raises(HfkitError, match="last message .* role 'assistant'"):
        TASK.preprocess(Dataset.from_list([{"messages": chat}]), tokenizer, recipe(), "messages")


def test_text_is_packed_into_full_blocks_with_eos_between_documents(tokenizer):
    docs = ["hello world " * 5, "the quick brown fox " * 3, "tests"]
    packed = TASK.preprocess(Dataset.from_list([{"text": d} for d in docs]), tokenizer, recipe(block_size=8), "text")
    stream = [t for d in docs for t in tokenizer(d)["input_ids"] + [tokenizer.eos_token_id]]
    assert len(packed) == len(stream) // 8
    assert [t for row in packed for t in row["input_ids"]] == stream[:len(packed) * 8]
    assert all(row["labels"] == row["input_ids"] and len(row["input_ids"]) == 8 for row in packed)
    assert TASK.generation_inputs(Dataset.from_list([{"text": "x"}]), tokenizer, recipe(), "text") is None


def test_preprocessing_is_cached_and_keyed_on_settings(tokenizer):
    ds = Dataset.from_list([{"prompt": "p", "completion": "c"}])
    first = TASK.preprocess(ds, tokenizer, recipe(), "prompt_completion")
    again = TASK.preprocess(ds, tokenizer, recipe(), "prompt_completion")
    other = TASK.preprocess(ds, tokenizer, recipe(max_length=8), "prompt_completion")
    assert first._fingerprint == again._fingerprint != other._fingerprint
