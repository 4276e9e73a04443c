"""The generation task's preprocessing: label masking, EOS, truncation, packing, chat formats, collation."""

import pytest
from datasets import Dataset
from support import make_tokenizer

from hfkit.errors import HfkitError
from hfkit.models import load_tokenizer
from hfkit.schema import Recipe
from hfkit.tasks import bind


def recipe(generation=None, **data):
    return Recipe.model_validate({"task": "generation", "model": {"name_or_path": "m"},
                                  "data": {"train_file": "t.jsonl", **data}, "generation": generation or {}})


def task(**data):
    return bind(recipe(**data), encoder_decoder=False)


def tokenize(rows, tokenizer, fmt="prompt_completion", **data):
    return task(format=fmt, **data).tokenize(Dataset.from_list(rows), tokenizer, "train")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    make_tokenizer().save_pretrained(folder)
    tok = load_tokenizer(str(folder), recipe().model)
    assert tok.pad_token == tok.eos_token == "</s>"  # no pad token: hfkit made pad = eos
    return tok


def test_prompt_tokens_are_masked_and_eos_is_a_target(tokenizer):
    ds = Dataset.from_list([{"prompt": "Write this date: March 5, 2021", "completion": "2021-03-05"}])
    row = task().tokenize(ds, tokenizer, "train").dataset[0]
    prompt_len = len(tokenizer("Write this date: March 5, 2021")["input_ids"])
    target = tokenizer("2021-03-05", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert row["labels"][:prompt_len] == [-100] * prompt_len
    assert row["labels"][prompt_len:] == target
    assert row["input_ids"][prompt_len:] == target
    assert row["labels"][-1] == tokenizer.eos_token_id == tokenizer.pad_token_id


def test_collator_pads_labels_by_position_so_eos_survives(tokenizer):
    rows = [{"prompt": "a", "completion": "b"}, {"prompt": "a much longer prompt", "completion": "c"}]
    tokenized = tokenize(rows, tokenizer).dataset
    batch = task().collator(tokenizer)([tokenized[0], tokenized[1]])
    short = len(tokenized[0]["input_ids"])
    labels = batch["labels"][0].tolist()
    assert labels[short - 1] == tokenizer.eos_token_id  # the real EOS is still trained
    assert labels[short:] == [-100] * (len(labels) - short)  # padding is not
    assert batch["attention_mask"][0].tolist()[short:] == [0] * (len(labels) - short)


def test_a_long_prompt_is_cut_and_its_whole_target_and_eos_stay(tokenizer):
    rows = [{"prompt": "short", "completion": "ok"}, {"prompt": "word " * 200, "completion": "kept whole"},
            {"prompt": "p", "completion": "far too long " * 20}]
    tokenized = tokenize(rows, tokenizer, max_length=24)
    assert tokenized.counts == {"examples": 3, "prompt_truncated": 1, "target_too_long": 1}
    short, long = tokenized.dataset
    target = tokenizer("kept whole", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert len(long["input_ids"]) == 24 and long["input_ids"][-len(target):] == target
    assert long["labels"] == [-100] * (24 - len(target)) + target  # the answer is never what gets cut
    assert short["labels"][-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("side", ["middle", "left"])
def test_prompts_are_cut_from_the_middle_or_the_left_and_generation_follows_the_same_rule(tokenizer, side):
    prompt = " ".join(f"w{i}" for i in range(60))
    ids = tokenizer(prompt)["input_ids"]
    rows = [{"prompt": prompt, "completion": "ok"}]
    data = {"max_length": 30, "truncation_side": side}
    row = tokenize(rows, tokenizer, **data).dataset[0]
    budget = row["labels"].count(-100)  # the prompt's tokens carry no loss
    kept = row["input_ids"][:budget]
    assert budget + 2 <= len(row["input_ids"]) == 30
    if side == "left":
        assert kept == ids[-budget:]
    else:
        assert kept == ids[:budget - budget // 2] + ids[len(ids) - budget // 2:]
    examples = bind(recipe({"max_new_tokens": 10}, **data), False).eval_examples(Dataset.from_list(rows), tokenizer)
    assert len(examples.prompts[0]) == 20 and examples.counts == {"prompt_truncated": 1}
    assert examples.references == ["ok"]


def test_chat_template_and_messages_train_on_the_last_assistant_turn(tokenizer):
    pc = tokenize([{"prompt": "hi", "completion": "hello"}], tokenizer, chat_template=True).dataset[0]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    msg = tokenize([{"messages": chat}], tokenizer, fmt="messages").dataset[0]
    assert pc["input_ids"] == msg["input_ids"] and pc["labels"] == msg["labels"]
    prompt = tokenizer("<|user|>hi</s><|assistant|>", add_special_tokens=False)["input_ids"]
    assert msg["input_ids"][:len(prompt)] == prompt
    inputs = task(format="messages").eval_examples(Dataset.from_list([{"messages": chat}]), tokenizer)
    assert inputs.prompts == [prompt] and inputs.references == ["hello"]


def test_messages_must_end_with_the_assistant(tokenizer):
    chat = [{"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]
    with pytest.raises(HfkitError, match="last message .* role 'assistant'"):
        tokenize([{"messages": chat}], tokenizer, fmt="messages")


def test_text_is_packed_into_blocks_with_eos_between_documents_and_no_token_is_dropped(tokenizer):
    docs = ["hello world " * 5, "the quick brown fox " * 3, "tests"]
    packed = tokenize([{"text": d} for d in docs], tokenizer, fmt="text", block_size=8)
    stream = [t for d in docs for t in tokenizer(d)["input_ids"] + [tokenizer.eos_token_id]]
    assert len(packed.dataset) == -(-len(stream) // 8) and len(stream) % 8  # the last block is shorter
    assert [t for row in packed.dataset for t in row["input_ids"]] == stream  # every token, in order
    assert all(row["labels"] == row["input_ids"] for row in packed.dataset)
    assert packed.counts == {"documents": 3, "tokens": len(stream), "blocks": len(packed.dataset)}
    assert task(format="text").eval_examples(Dataset.from_list([{"text": "x"}]), tokenizer) is None
    tiny = tokenize([{"text": "x"}], tokenizer, fmt="text", block_size=512)  # a small eval split: one block
    assert len(tiny.dataset) == 1


def test_preprocessing_is_cached_and_keyed_on_settings(tokenizer):
    ds = Dataset.from_list([{"prompt": "p", "completion": "c"}])
    first = task().tokenize(ds, tokenizer, "train").dataset
    again = task().tokenize(ds, tokenizer, "train").dataset
    other = task(max_length=8).tokenize(ds, tokenizer, "train").dataset
    assert first._fingerprint == again._fingerprint != other._fingerprint
