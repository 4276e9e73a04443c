"""Batched generation for evaluation and prediction.

Prompts are sorted by length, longest first, so each batch carries little padding and its
sequences finish together. The first batch holds `batch_size` prompts; later, shorter batches hold
as many prompts as fit in the same number of tokens (prompt + new tokens), so memory never exceeds
the first batch's while short prompts share one pass. A decoder-only model's prompts are padded on
the left (it continues from the last position), an encoder's on the right. Answers come back in the
original order, without their prompt tokens and exactly as decoded (no whitespace stripped), and each batch can be handed on as it finishes (only text is kept).
"""

from __future__ import annotations

from typing import Callable

from hfkit.distributed import max_over_processes
from hfkit.schema import GenerationSection


def generation_config(model, tokenizer, settings: GenerationSection, token_ids: dict | None = None):
    """A fresh GenerationConfig from the recipe; only token ids are taken from the model's own
    (and from `token_ids`, the task's, e.g. a forced first token for multilingual translation)."""
    from transformers import GenerationConfig

    own = model.generation_config
    sampling = {"top_k": settings.top_k, "top_p": settings.top_p, "temperature": settings.temperature} if settings.do_sample else {}
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": own.eos_token_id if own.eos_token_id is not None else tokenizer.eos_token_id,
        "bos_token_id": own.bos_token_id,
        "decoder_start_token_id": own.decoder_start_token_id,
        "forced_bos_token_id": getattr(own, "forced_bos_token_id", None),
        **(token_ids or {}),
    }
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        num_beams=settings.num_beams,
        do_sample=settings.do_sample,
        repetition_penalty=settings.repetition_penalty,
        **{k: v for k, v in sampling.items() if v is not None},
        **ids,
    )


def generate(model, tokenizer, prompts: list[list[int]], settings: GenerationSection, batch_size: int,
             seed: int, on_batch: Callable[[list[int], list[str]], None] | None = None, synced: bool = False,
             token_ids: dict | None = None) -> list[str]:
    """Generate one answer per prompt (token ids), returned as text in the prompts' order.

    `on_batch(indices, answers)` is called after every batch, e.g. to stream answers to disk.
    `synced`: parameters are sharded across processes (ZeRO-3, FSDP), so every process runs the
    same number of `generate` calls with `synced_gpus=True`, padding its shard with dummy batches.
    """
    import torch
    from transformers import set_seed

    config = generation_config(model, tokenizer, settings, token_ids)
    if settings.do_sample:
        set_seed(seed)  # sampled evaluation is repeatable
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)  # longest first: OOM early
    answers: list[str] = [""] * len(prompts)
    encoder_decoder = model.config.is_encoder_decoder
    was_training = model.training
    model.eval()
    try:
        batches = token_budget_batches(order, [len(p) for p in prompts], batch_size, settings.max_new_tokens)
        rounds = max_over_processes(len(batches)) if synced else len(batches)
        for round_index in range(rounds):
            batch_ids = batches[round_index] if round_index < len(batches) else []
            batch_prompts = [prompts[i] for i in batch_ids] or [[tokenizer.eos_token_id]]  # a dummy keeps step
            batch = tokenizer.pad({"input_ids": batch_prompts},
                                  padding_side="right" if encoder_decoder else "left", return_tensors="pt")
            batch = batch.to(model.device)
            with torch.inference_mode():
                output = model.generate(**batch, generation_config=config, **({"synced_gpus": True} if synced else {}))
            if not batch_ids:
                continue
            if not encoder_decoder:
                output = output[:, batch["input_ids"].shape[1]:]  # keep only the new tokens
            # Scored as decoded: no whitespace is stripped, as none is stripped from references (a
            # completion " 2021-03-05" can only be matched by " 2021-03-05"); metrics tokenize on their own.
            texts = tokenizer.batch_decode(output, skip_special_tokens=True)
            for i, text in zip(batch_ids, texts):
                answers[i] = text
            if on_batch is not None:
                on_batch(batch_ids, texts)
    finally:
        model.train(was_training)
    return answers


def token_budget_batches(order: list[int], lengths: list[int], batch_size: int, new_tokens: int) -> list[list[int]]:
    """Split `order` (longest first) into batches of at most the first batch's tokens."""
    if not order:
        return []
    budget = batch_size * (lengths[order[0]] + new_tokens)
    batches, start = [], 0
    while start < len(order):
        longest = lengths[order[start]] + new_tokens  # the first of a batch is its longest
        count = max(1, budget // longest)
        batches.append(order[start:start + count])
        start += count
    return batches
