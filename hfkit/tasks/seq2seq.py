"""Encoder-decoder (source, target) examples, shared by translation, summarization and generative QA.

`source_prefix` + source is the encoder input, cut to `max_source_length` from its middle or left
(`data.truncation_side`; the prefix and the final EOS stay); the target, ending in EOS, is the
labels. A target longer than `max_target_length` is never cut: the example is dropped from
training and counted; an evaluation example keeps its whole target in the loss (counted as
`beyond_max_length`; only a target longer than the model takes is refused). `DataCollatorForSeq2Seq` pads labels with -100
and builds decoder inputs; `Seq2SeqTrainer` trains.

Labels never start with the decoder's start token: a BERT tokenizer wraps targets in [CLS] ... [SEP]
and bert2bert starts decoding at [CLS], so keeping it would teach the model to emit [CLS] first.
"""

from __future__ import annotations

from hfkit.errors import HfkitError
from hfkit.tasks.base import IGNORE, EvalExamples, Tokenized
from hfkit.tasks.common import cache_key, counted, cut, example_ids, model_limit, pad_multiple, within_model
from hfkit.tasks.packing import WithoutBookkeeping

PREPROCESS_VERSION = 4  # part of the cache key: bump when the tokenisation below changes


def source_length(recipe, tokenizer) -> int:
    return within_model(recipe.data.max_source_length, 1024, tokenizer)


def decoder_start(model_config) -> int | None:
    return getattr(model_config, "decoder_start_token_id", None) if model_config is not None else None


def tokenize_pairs(ds, tokenizer, recipe, start_token: int | None, split: str = "train") -> Tokenized:
    """(source, target) rows -> input_ids, attention_mask and labels, with counts of what was cut."""
    data = recipe.data
    length = source_length(recipe, tokenizer)
    keep_limit = None if split == "train" else (model_limit(tokenizer) or 0)  # evaluation drops no example
    key = cache_key(ds, tokenizer, PREPROCESS_VERSION, data.source_prefix, length, data.max_target_length,
                    data.truncation_side, start_token, keep_limit)
    tokenized = ds.map(_encode_batch, batched=True, remove_columns=ds.column_names, num_proc=data.num_proc,
                       new_fingerprint=key, desc="tokenise",
                       fn_kwargs={"tokenizer": tokenizer, "prefix": data.source_prefix, "max_source_length": length,
                                  "max_target_length": data.max_target_length, "side": data.truncation_side,
                                  "start_token": start_token, "keep_limit": keep_limit})
    kept, counts, keeps_95 = counted(tokenized, split, keep_limit)
    if counts["examples"] and not len(kept):
        raise HfkitError(f"data.max_target_length: every target of the {split} split is longer than "
                         f"{data.max_target_length} tokens; raise it (to {keeps_95} to keep 95% of them)")
    return Tokenized(kept, counts, keeps_95)


def encode_sources(sources: list[str], tokenizer, prefix: str, max_length: int, side: str
                   ) -> tuple[list[list[int]], list[bool]]:
    """Encoder inputs cut to `max_length`, and which of them were cut."""
    ids = tokenizer([prefix + s for s in sources])["input_ids"]
    return [cut(i, max_length, side) for i in ids], [len(i) > max_length for i in ids]


def _encode_batch(batch, tokenizer, prefix: str, max_source_length: int, max_target_length: int, side: str,
                  start_token: int | None, keep_limit: int | None = None) -> dict:
    """`keep_limit` (evaluation): keep a target longer than max_target_length whole, up to this many
    tokens (0: no limit)."""
    sources, truncated = encode_sources(batch["source"], tokenizer, prefix, max_source_length, side)
    targets = tokenizer(text_target=batch["target"])["input_ids"]
    out = {"input_ids": sources, "attention_mask": [[1] * len(s) for s in sources], "labels": [],
           "length": [len(s) for s in sources], "truncated": truncated, "fits": [], "beyond": [], "needed": []}
    eos = tokenizer.eos_token_id  # read once (a per-row read costs ~12 us in transformers 5)
    for ids in targets:
        labels = labels_of(ids, eos, start_token)
        beyond = len(labels) > max_target_length
        out["labels"].append(labels)
        out["fits"].append(not beyond if keep_limit is None else not keep_limit or len(labels) <= keep_limit)
        out["beyond"].append(beyond)
        out["needed"].append(len(labels))
    return out


def labels_of(ids: list[int], eos: int | None, start_token: int | None) -> list[int]:
    """Target ids as labels: without a leading decoder-start token, with an EOS (T5, BART, mBART and
    BERT's [SEP] bring their own; tokenizers without a post-processor do not)."""
    if start_token is not None and ids and ids[0] == start_token:
        ids = ids[1:]
    if eos is not None and eos not in ids:
        ids = ids + [eos]
    return ids


def generation_examples(ds, tokenizer, recipe, sources: list[str], shown: list[str], references: list) -> EvalExamples:
    """Encoder inputs for generation, cut by the same rule as training inputs."""
    data = recipe.data
    prompts, truncated = encode_sources(sources, tokenizer, data.source_prefix, source_length(recipe, tokenizer),
                                        data.truncation_side)
    return EvalExamples(prompts=prompts, references=references, sources=list(shown),
                        ids=example_ids(ds, list(shown), references), counts={"prompt_truncated": sum(truncated)})


def collator(tokenizer, model=None):
    from transformers import DataCollatorForSeq2Seq

    # With the model, the collator also builds decoder_input_ids from the labels.
    return WithoutBookkeeping(DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=IGNORE,
                                                     pad_to_multiple_of=pad_multiple()))
