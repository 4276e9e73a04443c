"""Batched generation for evaluation and prediction.

Prompts are sorted by length so each batch carries little padding, padded on the left (a
decoder-only model continues from the last position), and the answers come back in the
original order with the prompt stripped.
"""

from __future__ import annotations

from hfkit.recipe import GenerationSection


def generation_config(model, tokenizer, settings: GenerationSection):
    """A fresh GenerationConfig from the recipe; only token ids are taken from the model's own."""
    from transformers import GenerationConfig

    own = model.generation_config
    sampling = {"top_k": settings.top_k, "top_p": settings.top_p, "temperature": settings.temperature} if settings.do_sample else {}
    return GenerationConfig(
        max_new_tokens=settings.max_new_tokens,
        num_beams=settings.num_beams,
        do_sample=settings.do_sample,
        repetition_penalty=settings.repetition_penalty,
        **{k: v for k, v in sampling.items() if v is not None},
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=own.eos_token_id if own.eos_token_id is not None else tokenizer.eos_token_id,
        bos_token_id=own.bos_token_id,
        decoder_start_token_id=own.decoder_start_token_id,
    )


def generate(model, tokenizer, prompts: list[list[int]], settings: GenerationSection, batch_size: int,
             seed: int) -> list[str]:
    """Generate one answer per prompt (token ids), returned as text in the prompts' order."""
    import torch
    from transformers import set_seed

    config = generation_config(model, tokenizer, settings)
    if settings.do_sample:
        set_seed(seed)  # sampled evaluation is repeatable
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)  # longest first: OOM early
    answers: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            batch_ids = order[start:start + batch_size]
            batch = tokenizer.pad({"input_ids": [prompts[i] for i in batch_ids]}, padding_side="left",
                                  return_tensors="pt").to(model.device)
            with torch.inference_mode():
                output = model.generate(**batch, generation_config=config)
            if not model.config.is_encoder_decoder:
                output = output[:, batch["input_ids"].shape[1]:]  # keep only the new tokens
            for i, text in zip(batch_ids, tokenizer.batch_decode(output, skip_special_tokens=True)):
                answers[i] = text.strip()
    finally:
        model.train(was_training)
    return answers
