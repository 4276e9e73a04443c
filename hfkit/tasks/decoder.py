"""Decoder-only (prompt, target) examples, shared by every task that trains a causal LM on pairs.

The prompt's tokens get label -100; the target is followed by EOS so the model learns to stop.
When prompt + target exceed `max_length`, the PROMPT is cut (from its middle or its left,
`data.truncation_side`); the target never is. An example whose target alone leaves no room for a
prompt is dropped from training (and from the evaluation loss), and counted. Generation prompts
follow the same rule with `generation.max_new_tokens` as the target's budget. Each row also gets
its `length` (the length-grouped sampler reads that column instead of every example); training
rows may be packed (hfkit.tasks.packing), evaluation rows never are.

Prompts are rendered one of two ways: inside the tokenizer's chat template as a user turn (the
template marks where the answer starts), or as plain text that ends with the task's cue (a newline
and e.g. "French:"), so a base model never trains on "...in the house.Le chat...".
"""

from __future__ import annotations

from hfkit.errors import HfkitError
from hfkit.tasks import packing
from hfkit.tasks.base import IGNORE, EvalExamples, Tokenized
from hfkit.tasks.common import cache_key, counted, cut, example_ids, pad_multiple, within_model

# Bump when the tokenisation below changes: it is part of the preprocessing cache key.
PREPROCESS_VERSION = 3


def max_length(recipe, tokenizer) -> int:
    """Prompt + target tokens (data.max_length; default 512 or the model's maximum)."""
    return within_model(recipe.data.max_length, 512, tokenizer)


def chat(tokenizer, messages: list[dict]) -> str:
    """Messages rendered by the tokenizer's chat template, ending where the assistant's turn starts."""
    if not tokenizer.chat_template:
        raise HfkitError("this model's tokenizer has no chat template, which data.format: messages and "
                         "data.chat_template: true need; use format prompt_completion without chat_template")
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_prompts(prompts: list[str], tokenizer, templated: bool) -> list[list[int]]:
    # A rendered chat template already holds its special tokens (BOS etc.); plain text does not.
    return tokenizer(prompts, add_special_tokens=not templated)["input_ids"]


def tokenize_pairs(ds, tokenizer, recipe, templated: bool, render, render_key: str, split: str = "train") -> Tokenized:
    """Rows -> input_ids/attention_mask/labels/length with the prompt masked and EOS appended; the
    training split packed into rows of `max_length` when `data.packing` is bfd.

    `render(batch) -> (prompts, targets)` turns a batch of rows into texts; `render_key` names
    everything it depends on (template, options) for the cache key.
    """
    length = max_length(recipe, tokenizer)
    side = recipe.data.truncation_side
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, render_key, length, side, templated)
    tokenized = ds.map(_encode_batch, batched=True, remove_columns=ds.column_names, num_proc=recipe.data.num_proc,
                       fn_kwargs={"tokenizer": tokenizer, "render": render, "templated": templated,
                                  "max_length": length, "side": side},
                       new_fingerprint=key, desc="tokenise")
    kept, counts = counted(tokenized)
    if counts["examples"] and not len(kept):
        raise HfkitError(f"data.max_length: {length} tokens leave no room for a prompt before any target; raise it")
    if split == "train" and recipe.data.packing == "bfd":
        kept = packing.bfd(kept, length, recipe.data.num_proc, key + "-bfd")
        counts["packed_rows"] = len(kept)
    return Tokenized(kept, counts)


def _encode_batch(batch: dict, tokenizer, render, templated: bool, max_length: int, side: str) -> dict:
    prompts, targets = render(batch)
    prompt_ids = encode_prompts(prompts, tokenizer, templated)
    target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    out = {"input_ids": [], "attention_mask": [], "labels": [], "length": [], "truncated": [], "fits": []}
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id  # read once: each read costs ~12 us in transformers 5
    for prompt, target in zip(prompt_ids, target_ids):
        target = target + [eos]  # the model must learn to stop
        budget = max_length - len(target)
        fits = budget >= 1
        kept = cut(prompt, budget, side, keep_first=bos) if fits else []
        ids = kept + target if fits else []
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append([IGNORE] * len(kept) + target if fits else [])
        out["length"].append(len(ids))
        out["truncated"].append(fits and len(kept) < len(prompt))
        out["fits"].append(fits)
    return out


def generation_examples(ds, tokenizer, recipe, templated: bool, prompts: list[str], targets: list,
                        sources: list[str], references: list | None = None) -> EvalExamples:
    """Prompt token ids cut to `max_length - max_new_tokens` (the training rule), and references."""
    budget = max_length(recipe, tokenizer) - recipe.generation.max_new_tokens
    if budget < 1:
        raise HfkitError(f"generation.max_new_tokens ({recipe.generation.max_new_tokens}) must be smaller than "
                         f"data.max_length ({max_length(recipe, tokenizer)}): prompt and answer share that budget")
    ids = encode_prompts(prompts, tokenizer, templated)
    bos = tokenizer.bos_token_id
    cut_ids = [cut(p, budget, recipe.data.truncation_side, keep_first=bos) for p in ids]
    truncated = sum(len(a) < len(b) for a, b in zip(cut_ids, ids))
    references = list(targets) if references is None else references
    return EvalExamples(prompts=cut_ids, references=references, sources=list(sources),
                        ids=example_ids(ds, list(sources), references), counts={"prompt_truncated": truncated})


def collator(tokenizer, model=None, packing_mode: str = "none"):
    """Padded batches, or packed ones for training (`packing_mode`: padding_free, bfd)."""
    return packing.DecoderCollator(tokenizer, packing_mode, pad_to_multiple_of=pad_multiple())
