"""Helpers the task modules share: cache keys, length defaults, prompt cutting, example ids."""

from __future__ import annotations

import hashlib
import json

from datasets.fingerprint import Hasher


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything in a tokenizer that changes the token ids it produces."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else Hasher.hash(tokenizer.get_vocab())
    parts = [type(tokenizer).__name__, vocab, tokenizer.chat_template or "",
             json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str),
             str(getattr(tokenizer, "src_lang", "")), str(getattr(tokenizer, "tgt_lang", ""))]
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


def pad_multiple() -> int | None:
    """Pad batches to a multiple of 8 on a GPU (tensor cores want aligned shapes); on a CPU that
    would only add padding."""
    import torch

    return 8 if torch.cuda.is_available() else None


def cut(ids: list[int], budget: int, side: str, keep_first: int | None = None) -> list[int]:
    """`ids` shortened to `budget` tokens: from the middle (its start and end stay) or the left.

    `keep_first` (a BOS id) is never cut when the sequence starts with it.
    """
    if len(ids) <= budget:
        return ids
    if keep_first is not None and ids and ids[0] == keep_first and budget > 1:
        return ids[:1] + cut(ids[1:], budget - 1, side)
    if side == "left":
        return ids[len(ids) - budget:]
    tail = budget // 2
    return ids[:budget - tail] + (ids[len(ids) - tail:] if tail else [])


def example_ids(ds, sources: list[str], references: list) -> list[str]:
    """The data's `id` column, else a hash of input and reference; repeats get '#2', '#3', ...

    Two runs on the same eval set get the same ids, so their examples can be paired.
    """
    if "id" in ds.column_names:
        raw = [str(i) for i in ds["id"]]
    else:
        raw = [hashlib.sha1(json.dumps([s, r], ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:16]
               for s, r in zip(sources, references)]
    seen: dict[str, int] = {}
    ids = []
    for value in raw:
        seen[value] = seen.get(value, 0) + 1
        ids.append(value if seen[value] == 1 else f"{value}#{seen[value]}")
    return ids


def counted(tokenized, **extra) -> tuple[object, dict[str, int]]:
    """Drop rows whose `fits` is false and count what tokenizing cut (`truncated`) and dropped.

    Returns the dataset without the two bookkeeping columns and the counts.
    """
    import numpy as np

    fits = np.asarray(tokenized.data.column("fits").to_pylist(), dtype=bool)
    truncated = int(np.asarray(tokenized.data.column("truncated").to_pylist(), dtype=bool).sum())
    kept = tokenized if fits.all() else tokenized.select(np.flatnonzero(fits))
    counts = {"examples": len(tokenized), "prompt_truncated": truncated, "target_too_long": int((~fits).sum()), **extra}
    return kept.remove_columns(["fits", "truncated"]), counts
