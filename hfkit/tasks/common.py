"""Helpers every task's preprocessing shares: the cache key and dropping untrainable examples."""

from __future__ import annotations

import hashlib
import json

from datasets.fingerprint import Hasher

from hfkit.errors import HfkitError


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything in a tokenizer that changes the token ids it produces."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else Hasher.hash(tokenizer.get_vocab())
    parts = [type(tokenizer).__name__, vocab, tokenizer.chat_template or "",
             json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str)]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def cache_key(ds, tokenizer, *settings) -> str:
    """`Dataset.map` fingerprint: the input data, the tokenizer and the settings, nothing else.

    datasets would otherwise hash the mapped function's closure, which for tokenizers is
    unstable (a cache miss every run) or too coarse.
    """
    return Hasher.hash([ds._fingerprint, tokenizer_fingerprint(tokenizer), *map(repr, settings)])


def within_model(value: int | None, default: int, tokenizer) -> int:
    """A length the recipe sets, or `default` capped at what the model takes (as run_clm.py does)."""
    return value if value is not None else min(default, tokenizer.model_max_length)


def decoder_max_length(recipe, tokenizer) -> int:
    """Decoder-only: prompt + target tokens."""
    return within_model(recipe.data.max_length, 512, tokenizer)


def encoder_max_length(recipe, tokenizer) -> int:
    """Encoder-decoder: encoder input tokens."""
    return within_model(recipe.data.max_source_length, 1024, tokenizer)


def pad_multiple() -> int | None:
    """Pad batches to a multiple of 8 on a GPU (tensor cores want aligned shapes); on a CPU that
    would only add padding."""
    import torch

    return 8 if torch.cuda.is_available() else None


def drop_examples_without_target(tokenized, max_length: int):
    """Drop examples whose every label is -100 (the prompt alone fills max_length): they train nothing."""
    kept = tokenized.filter(_has_target, desc="drop examples without target tokens")
    dropped = len(tokenized) - len(kept)
    if not len(kept):
        raise HfkitError(f"data.max_length: {max_length} tokens leave no room for any target; raise it")
    if dropped:
        print(f"Dropped {dropped} of {len(tokenized)} examples whose prompt fills data.max_length={max_length}")
    return kept


def _has_target(example) -> bool:
    return any(label != -100 for label in example["labels"])
