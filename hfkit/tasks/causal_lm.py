"""The `generation` task: causal-LM fine-tuning on raw text, prompt/completion pairs or chat messages.

- `text`: tokenised, EOS after each document, concatenated and cut into `block_size` chunks.
- `prompt_completion` and `messages`: prompt tokens get label -100, the target is followed by EOS
  so the model learns to stop. `messages` renders every turn but the last through the tokenizer's
  chat template and trains on the last (assistant) turn.
"""

from __future__ import annotations

from itertools import chain

from hfkit.errors import HfkitError
from hfkit.tasks import GenerationInputs, Task
from hfkit.tasks.common import cache_key, decoder_max_length, drop_examples_without_target, pad_multiple, within_model

IGNORE = -100
# Bump when the tokenisation below changes: it is part of the preprocessing cache key.
PREPROCESS_VERSION = 1

_FIELDS = {"prompt_completion": ("prompt", "completion"), "messages": ("messages",), "text": ("text",)}


def preprocess(ds, tokenizer, recipe, fmt: str):
    """Tokenise one split for training or loss evaluation (input_ids, attention_mask, labels)."""
    data = recipe.data
    if fmt == "text":
        return pack_text(ds, tokenizer, within_model(data.block_size, 1024, tokenizer), data.num_proc)
    return tokenize_pairs(ds, tokenizer, fmt, bool(data.chat_template), decoder_max_length(recipe, tokenizer), data.num_proc)


def generation_inputs(ds, tokenizer, recipe, fmt: str) -> GenerationInputs | None:
    """Prompts to generate from and references to score; raw text has nothing to generate."""
    if fmt == "text":
        return None
    sources = ds["prompt"] if fmt == "prompt_completion" else None
    return pair_generation_inputs(ds, tokenizer, fmt, bool(recipe.data.chat_template), sources)


def pack_text(ds, tokenizer, block_size: int, num_proc: int | None):
    """Tokenise documents, EOS after each, concatenate and cut into `block_size` blocks."""
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, "text", block_size)
    docs = ds.map(_tokenize_documents, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  fn_kwargs={"tokenizer": tokenizer}, new_fingerprint=key + "-docs", desc="tokenise")
    return docs.map(_pack, batched=True, num_proc=num_proc, fn_kwargs={"block_size": block_size},
                    new_fingerprint=key + "-pack", desc=f"pack into blocks of {block_size}")


def tokenize_pairs(ds, tokenizer, fmt: str, chat_template: bool, max_length: int, num_proc: int | None):
    """prompt_completion or messages rows -> input_ids/labels with the prompt masked and EOS appended."""
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, fmt, max_length, chat_template)
    tokenized = ds.map(_encode_pairs, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                       fn_kwargs={"tokenizer": tokenizer, "fmt": fmt, "chat_template": chat_template,
                                  "max_length": max_length},
                       new_fingerprint=key, desc="tokenise")
    return drop_examples_without_target(tokenized, max_length)


def pair_generation_inputs(ds, tokenizer, fmt: str, chat_template: bool, sources=None) -> GenerationInputs:
    """Prompt token ids and target texts of prompt_completion/messages rows; `sources` label the rows."""
    prompts, targets = render_pairs(ds[:len(ds)], tokenizer, fmt, chat_template)
    prompt_ids = _encode_prompts(prompts, tokenizer, templated=fmt == "messages" or chat_template)
    return GenerationInputs(prompts=prompt_ids, references=[t.strip() for t in targets],
                            sources=list(sources if sources is not None else prompts))


def render_pairs(batch: dict, tokenizer, fmt: str, chat_template: bool) -> tuple[list[str], list[str]]:
    """(prompt texts, target texts) for a batch, with the chat template applied where asked."""
    if fmt == "messages":
        prompts, targets = [], []
        for messages in batch["messages"]:
            if messages[-1].get("role") != "assistant":
                raise HfkitError("data: with format messages, the last message of each example must have role "
                                 f"'assistant' (it is the training target); found {messages[-1].get('role')!r}")
            prompts.append(_chat(tokenizer, messages[:-1]))
            targets.append(messages[-1]["content"])
        return prompts, targets
    prompts = batch["prompt"]
    if chat_template:
        prompts = [_chat(tokenizer, [{"role": "user", "content": p}]) for p in prompts]
    return list(prompts), list(batch["completion"])


def _chat(tokenizer, messages: list[dict]) -> str:
    if not tokenizer.chat_template:
        raise HfkitError("this model's tokenizer has no chat template, which data.format: messages and "
                         "data.chat_template: true need; use format prompt_completion without chat_template")
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def _encode_prompts(prompts: list[str], tokenizer, templated: bool) -> list[list[int]]:
    # A rendered chat template already holds its special tokens (BOS etc.); plain text does not.
    return tokenizer(prompts, add_special_tokens=not templated)["input_ids"]


def _encode_pairs(batch: dict, tokenizer, fmt: str, chat_template: bool, max_length: int) -> dict:
    prompts, targets = render_pairs(batch, tokenizer, fmt, chat_template)
    prompt_ids = _encode_prompts(prompts, tokenizer, templated=fmt == "messages" or chat_template)
    target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    out = {"input_ids": [], "attention_mask": [], "labels": []}
    for prompt, target in zip(prompt_ids, target_ids):
        target = target + [tokenizer.eos_token_id]  # the model must learn to stop
        ids = (prompt + target)[:max_length]
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append(([IGNORE] * len(prompt) + target)[:max_length])
    return out


def _tokenize_documents(batch: dict, tokenizer) -> dict:
    ids = tokenizer(batch["text"])["input_ids"]
    return {"input_ids": [doc + [tokenizer.eos_token_id] for doc in ids]}


def _pack(batch: dict, block_size: int) -> dict:
    """Concatenate the batch's documents and cut them into full blocks (the remainder is dropped)."""
    stream = list(chain.from_iterable(batch["input_ids"]))
    usable = len(stream) // block_size * block_size
    blocks = [stream[i:i + block_size] for i in range(0, usable, block_size)]
    return {"input_ids": blocks, "attention_mask": [[1] * block_size for _ in blocks], "labels": [list(b) for b in blocks]}


def collator(tokenizer, model=None):
    from transformers import DataCollatorForSeq2Seq

    # Despite its name, this is the collator that pads labels by position with -100; a
    # language-modeling collator would mask every token equal to pad, and pad is often EOS.
    return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, pad_to_multiple_of=pad_multiple())


def _training_args_class():
    from transformers import TrainingArguments

    return TrainingArguments


def _trainer_class():
    from transformers import Trainer

    return Trainer


TASK = Task(
    name="generation",
    formats=("prompt_completion", "messages", "text"),
    fields=lambda fmt: _FIELDS[fmt],
    text_fields=lambda fmt: _FIELDS[fmt],
    default_metrics=lambda recipe: [] if recipe.data.format == "text" else ["exact_match"],
    auto_model="AutoModelForCausalLM",
    peft_task_type="CAUSAL_LM",
    preprocess=preprocess,
    collator=collator,
    generation_inputs=generation_inputs,
    training_args_class=_training_args_class,
    trainer_class=_trainer_class,
    lengths=lambda recipe: ({"data.block_size": recipe.data.block_size} if recipe.data.format == "text"
                            else {"data.max_length": recipe.data.max_length}),
)
