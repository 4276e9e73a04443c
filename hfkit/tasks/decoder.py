"""Decoder-only (prompt, target) examples, shared by every task that trains a causal LM on pairs.

The prompt's tokens get label -100; the target is followed by EOS so the model learns to stop.
When prompt + target exceed `max_length`, the PROMPT is cut (from its middle or its left,
`data.truncation_side`); the target never is. A training example whose target alone leaves no room
for a prompt is dropped, and counted. An evaluation example never is: its prompt is cut as for
generation (to `max_length - generation.max_new_tokens` tokens) and its whole target stays, so the
row is longer than `max_length` (counted as `beyond_max_length`); only a target longer than the
model itself takes is refused. Generation prompts follow the same rule with `generation.max_new_tokens`
as the target's budget. Each row also gets
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
from hfkit.tasks.common import cache_key, counted, cut, example_ids, model_limit, pad_multiple, within_model

# Bump when the tokenisation below changes: it is part of the preprocessing cache key.
PREPROCESS_VERSION = 4


def max_length(recipe, tokenizer) -> int:
    """Prompt + target tokens (data.max_length; default 512 or the model's maximum)."""
    return within_model(recipe.data.max_length, 512, tokenizer)


def prompt_budget(recipe, max_length: int) -> int:
    """Prompt tokens a generation prompt keeps: prompt and answer share `max_length`."""
    budget = max_length - recipe.generation.max_new_tokens
    if budget < 1:
        raise HfkitError(f"generation.max_new_tokens ({recipe.generation.max_new_tokens}) must be smaller than "
                         f"data.max_length ({max_length}): prompt and answer share that budget")
    return budget


def generation_tokens(recipe, config) -> int:
    """`prompt_budget` from the model's config (before any tokenizer loads): data.max_length, else
    512 or the model's maximum, as `max_length` takes it from the tokenizer."""
    limit = getattr(config, "max_position_embeddings", None) if config is not None else None
    default = min(512, limit) if isinstance(limit, int) and limit > 0 else 512
    return prompt_budget(recipe, recipe.data.max_length or default)


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
    # Evaluation keeps every example: a prompt that leaves no room is cut to generation's budget.
    keep_all = None if split == "train" else {"prompt_budget": max(1, length - recipe.generation.max_new_tokens),
                                              "model_limit": model_limit(tokenizer)}
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, render_key, length, side, templated, keep_all)
    tokenized = ds.map(_encode_batch, batched=True, remove_columns=ds.column_names, num_proc=recipe.data.num_proc,
                       fn_kwargs={"tokenizer": tokenizer, "render": render, "templated": templated,
                                  "max_length": length, "side": side, "keep_all": keep_all},
                       new_fingerprint=key, desc="tokenise")
    kept, counts, keeps_95 = counted(tokenized, split, keep_all and keep_all["model_limit"])
    if counts["examples"] and not len(kept):
        needed = tokenized["needed"]
        raise HfkitError(f"data.max_length: {length} tokens leave no room for a prompt before any target of the "
                         f"{split} split (its targets with EOS are {min(needed) - 1}-{max(needed) - 1} tokens); "
                         f"raise it to at least {min(needed)} ({keeps_95} keeps 95% of the examples)")
    if split == "train" and recipe.data.packing == "bfd":
        kept = packing.bfd(kept, length, recipe.data.num_proc, key + "-bfd")
        counts["packed_rows"] = len(kept)
    return Tokenized(kept, counts, keeps_95)


def _encode_batch(batch: dict, tokenizer, render, templated: bool, max_length: int, side: str,
                  keep_all: dict | None = None) -> dict:
    prompts, targets = render(batch)
    prompt_ids = encode_prompts(prompts, tokenizer, templated)
    target_ids = tokenizer(targets, add_special_tokens=False)["input_ids"]
    out = {"input_ids": [], "attention_mask": [], "labels": [], "length": [], "truncated": [], "fits": [],
           "beyond": [], "needed": []}
    eos, bos = tokenizer.eos_token_id, tokenizer.bos_token_id  # read once: each read costs ~12 us in transformers 5
    for prompt, target in zip(prompt_ids, target_ids):
        target = target + [eos]  # the model must learn to stop
        budget = max_length - len(target)
        beyond = budget < 1 and keep_all is not None
        if beyond:  # an evaluation example: the prompt as generation cuts it, the whole target, past max_length
            limit = keep_all["model_limit"]
            budget = min(keep_all["prompt_budget"], limit - len(target) if limit else keep_all["prompt_budget"])
        fits = budget >= 1
        kept = cut(prompt, budget, side, keep_first=bos) if fits else []
        ids = kept + target if fits else []
        out["input_ids"].append(ids)
        out["attention_mask"].append([1] * len(ids))
        out["labels"].append([IGNORE] * len(kept) + target if fits else [])
        out["length"].append(len(ids))
        out["truncated"].append(fits and len(kept) < len(prompt))
        out["fits"].append(fits)
        out["beyond"].append(beyond and fits)
        out["needed"].append(len(target) + 1)  # the max_length that keeps it: its target, EOS and one prompt token
    return out


def generation_examples(ds, tokenizer, recipe, templated: bool, prompts: list[str], targets: list,
                        sources: list[str], references: list | None = None) -> EvalExamples:
    """Prompt token ids cut to `max_length - max_new_tokens` (the training rule), and references."""
    budget = prompt_budget(recipe, max_length(recipe, tokenizer))
    ids = encode_prompts(prompts, tokenizer, templated)
    bos = tokenizer.bos_token_id
    cut_ids = [cut(p, budget, recipe.data.truncation_side, keep_first=bos) for p in ids]
    truncated = sum(len(a) < len(b) for a, b in zip(cut_ids, ids))
    references = list(targets) if references is None else references
    return EvalExamples(prompts=cut_ids, references=references, sources=list(sources),
                        ids=example_ids(ds, list(sources), references), counts={"prompt_truncated": truncated})


def collator(tokenizer, model=None, packing_mode: str = "none", boundaries: bool = False):
    """Padded batches, or packed ones for training (`packing_mode`: padding_free, bfd; `boundaries`:
    padding-free rows say where their examples start, for variable-length attention)."""
    return packing.DecoderCollator(tokenizer, packing_mode, pad_to_multiple_of=pad_multiple(), boundaries=boundaries)
