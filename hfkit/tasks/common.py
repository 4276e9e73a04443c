"""Helpers the task modules share: cache keys, length defaults, prompt cutting, example ids."""

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


def model_limit(tokenizer) -> int | None:
    """The most tokens the model takes, as its tokenizer says (None when it sets no real limit)."""
    limit = tokenizer.model_max_length
    return limit if limit and limit < 1_000_000 else None


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


DROP_WARNING = 0.10  # a training split losing more than this share of its examples gets a warning


def counted(tokenized, split: str = "train", model_limit: int | None = None
            ) -> tuple[object, dict[str, int], int | None]:
    """Drop rows whose `fits` is false and count what tokenizing cut (`truncated`) and dropped.

    Training counts `target_too_long` (dropped). An evaluation split drops nothing: it counts
    `beyond_max_length`, the rows kept whole past the length, and a row that fits not even the model
    is an error. Returns the dataset without the bookkeeping columns, the counts and, when more than
    DROP_WARNING of a training split was dropped, the length that would keep 95% of its examples
    (the 95th percentile of each row's `needed` length; else None).
    """
    import numpy as np

    def column(name: str):
        return np.asarray(tokenized.data.column(name).to_pylist()) if name in tokenized.column_names else None

    fits = column("fits").astype(bool)
    dropped = int((~fits).sum())
    counts = {"examples": len(tokenized), "prompt_truncated": int(column("truncated").astype(bool).sum())}
    keeps_95 = None
    if split == "train":
        counts["target_too_long"] = dropped
        needed = column("needed")
        if needed is not None and len(fits) and dropped / len(fits) > DROP_WARNING:
            keeps_95 = int(np.percentile(needed, 95, method="higher"))
    else:
        if dropped:
            raise HfkitError(f"data: {dropped} of {len(fits)} {split} examples have a target longer than the model "
                             f"takes ({model_limit} tokens); evaluation data is never dropped, so shorten or remove "
                             "those examples (or use a model with a longer context)")
        beyond = column("beyond")
        counts["beyond_max_length"] = int(beyond.astype(bool).sum()) if beyond is not None else 0
    kept = tokenized if fits.all() else tokenized.select(np.flatnonzero(fits))
    bookkeeping = [name for name in ("fits", "truncated", "beyond", "needed") if name in tokenized.column_names]
    return kept.remove_columns(bookkeeping), counts, keeps_95
