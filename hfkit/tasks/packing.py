"""Packing decoder-only (prompt, target) examples without changing their loss.

`data.packing` (decoder-only prompt/target examples; format text is packed into blocks already):
- `none`: one example per row, padded to the batch's longest (length-grouped batches keep that short).
- `padding_free`: the collator concatenates a batch into one row, as transformers'
  DataCollatorWithFlattening does: no padding at all.
- `bfd`: at preparation, examples are put into rows of at most `data.max_length` tokens by
  best-fit decreasing (within groups of PACK_GROUP examples); the collator pads those rows.
In a packed row, `position_ids` restart at 0 for every example and there is no attention mask:
transformers 5 builds a block-diagonal causal mask from such position ids (for sdpa and eager,
masking_utils.find_packed_sequence_indices), so no token attends across examples. A padding-free
row also carries its examples' boundaries (`cu_seq_lens_q`) where the attention takes them
(flash-attention, hfkit.varlen_attention): then each example's attention runs by itself. The label at
each example's first position is -100, so no loss crosses a boundary (unpacked, that label is
never predicted either). The batch says `use_cache: False`: a model in training mode otherwise
builds a cache, and with a cache transformers does not look for packed sequences (measured: the
second example's token losses were off by 0.09). Evaluation never packs.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from hfkit.tasks.base import IGNORE

MODES = ("none", "padding_free", "bfd")
PACK_GROUP = 10_000  # examples per best-fit-decreasing group: bounded memory, linear time
BOOKKEEPING = ("length", "examples")  # columns a collator never hands to the model


def resolve(setting: str, device_has_varlen_attention: bool | None = None) -> str:
    """`auto` -> `padding_free` where the attention takes the examples' boundaries, else `none`.

    On 2 CPU cores, LoRA on SmolLM2 (benchmarks/train_vs_trl.py, batch 8 of 40-500-token examples),
    padding-free rows with per-example sdpa (hfkit.varlen_attention) trained at 1.30x the non-padding
    tokens/s of length-grouped padded batches: no position of the model computes padding. Without
    boundaries, sdpa computes a dense [tokens x tokens] product under the block-diagonal mask, and a
    packed row cost the square of all its tokens (0.69x, benchmarks/packing_speed.py); eager
    attention still does, so `auto` keeps such a model on padded batches.
    """
    if setting != "auto":
        return setting
    return "padding_free" if device_has_varlen_attention else "none"


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices grouped into bins of at most `capacity` tokens: longest first, each into the bin it
    fills most tightly. O(n log capacity): bins are kept in buckets by their free space."""
    free_bins: dict[int, list[int]] = {}  # free space -> bins with exactly that much room
    free_sizes: list[int] = []  # sorted free-space values that have bins
    bins: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        need = lengths[index]
        at = bisect_left(free_sizes, need)
        if at < len(free_sizes):
            free = free_sizes[at]
            number = free_bins[free].pop()
            if not free_bins[free]:
                del free_bins[free]
                free_sizes.pop(at)
        else:
            number, free = len(bins), capacity
            bins.append([])
        bins[number].append(index)
        left = free - need
        if left > 0:
            if left not in free_bins:
                free_bins[left] = []
                insort(free_sizes, left)
            free_bins[left].append(number)
    return bins


def pack_rows(batch: dict, capacity: int) -> dict:
    """A batch of tokenized examples as best-fit-decreasing rows (Dataset.map, batched)."""
    lengths = [len(ids) for ids in batch["input_ids"]]
    out: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], "length": [], "examples": []}
    for members in best_fit_decreasing(lengths, capacity):
        members.sort()  # the data's order inside a row
        ids, labels, positions = [], [], []
        for i in members:
            ids += batch["input_ids"][i]
            labels += [IGNORE] + batch["labels"][i][1:]
            positions += range(lengths[i])
        for key, value in (("input_ids", ids), ("labels", labels), ("position_ids", positions),
                           ("length", len(ids)), ("examples", len(members))):
            out[key].append(value)
    return out


def bfd(dataset, capacity: int, num_proc: int | None, fingerprint: str):
    """The tokenized split packed into rows of at most `capacity` tokens (cached like tokenizing)."""
    return dataset.map(pack_rows, batched=True, batch_size=PACK_GROUP, remove_columns=dataset.column_names,
                       num_proc=num_proc, fn_kwargs={"capacity": capacity}, new_fingerprint=fingerprint,
                       desc=f"pack into rows of {capacity} (best fit decreasing)")


class DecoderCollator:
    """Batches of decoder-only examples for the packing mode; labels are padded with -100 by position
    (a language-modeling collator would mask every token equal to pad, and pad is often EOS)."""

    def __init__(self, tokenizer, packing: str = "none", pad_to_multiple_of: int | None = None,
                 boundaries: bool = False):
        from transformers import DataCollatorForSeq2Seq

        self.packing, self.pad_id, self.boundaries = packing, tokenizer.pad_token_id, boundaries
        self.padded = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, pad_to_multiple_of=pad_to_multiple_of)

    def __call__(self, features: list[dict]) -> dict:
        if self.packing == "padding_free":
            return flatten(features, self.boundaries)
        if self.packing == "bfd":
            return pad_packed(features, self.pad_id)
        return self.padded([without_bookkeeping(f) for f in features])


def without_bookkeeping(feature: dict) -> dict:
    return {key: value for key, value in feature.items() if key not in BOOKKEEPING}


class WithoutBookkeeping:
    """A collator that never sees the bookkeeping columns (Trainer drops them, the scorer does not)."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, features: list[dict]) -> dict:
        return self.collator([without_bookkeeping(f) for f in features])


def _positions(feature: dict) -> list[int]:
    positions = feature.get("position_ids")
    return list(positions) if positions is not None else list(range(len(feature["input_ids"])))


def flatten(features: list[dict], boundaries: bool = False) -> dict:
    """The whole batch as one row: position ids restart per example, each example's first label is -100.
    `boundaries`: also the examples' cumulative lengths, as transformers' DataCollatorWithFlattening
    hands them to variable-length attention (flash-attention, hfkit.varlen_attention)."""
    import torch

    ids, labels, positions, ends = [], [], [], [0]
    for feature in features:
        feature_positions = _positions(feature)
        ids += list(feature["input_ids"])
        labels += [IGNORE if p == 0 else label for p, label in zip(feature_positions, feature["labels"])]
        positions += feature_positions
        ends.append(len(ids))
    batch = {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels]),
             "position_ids": torch.tensor([positions]), "use_cache": False}
    if boundaries:
        cumulative = torch.tensor(ends, dtype=torch.int32)
        longest = max(b - a for a, b in zip(ends, ends[1:]))
        batch.update(cu_seq_lens_q=cumulative, cu_seq_lens_k=cumulative, max_length_q=longest, max_length_k=longest)
    return batch


def pad_packed(features: list[dict], pad_id: int) -> dict:
    """Packed rows padded to the longest; the padding is a sequence of its own (positions from 0,
    labels -100), so it needs no attention mask either."""
    import torch

    width = max(len(f["input_ids"]) for f in features)
    ids, labels, positions = [], [], []
    for feature in features:
        gap = width - len(feature["input_ids"])
        ids.append(list(feature["input_ids"]) + [pad_id] * gap)
        labels.append(list(feature["labels"]) + [IGNORE] * gap)
        positions.append(_positions(feature) + list(range(gap)))
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(positions),
            "use_cache": False}
