"""What decoding costs in memory: beams and new tokens checked against the memory there is, from
the model's config, before any weights load.

Generation keeps a key/value cache for every sequence it extends: num_beams sequences per prompt,
`per_device_eval_batch_size` prompts per batch, each up to prompt + max_new_tokens tokens (an
encoder-decoder also keeps the source's cross-attention keys and values), in float32 while scoring
(`eval.dtype: float32`). Every step also scores each sequence against the whole vocabulary.
`hfkit eval RUN --decode beam=100000` once grew to 17 GB before the kernel killed it; a setting whose
cache and scores alone need more than the memory available is now refused in one line, by
`hfkit validate`, before training and before `hfkit eval` loads a model. The estimate is a floor
(the weights and activations come on top), so a setting that passes can still be too big; one that
fails cannot fit. benchmarks/decoding_memory.py (SmolLM2-135M in fp32, 100-token prompts, batch 4):
16 beams x 32 new tokens, estimate 407 MB, peak RSS growth 1,194 MB; 32 beams, 814 vs 1,747 MB.
"""

from __future__ import annotations

from dataclasses import dataclass

from hfkit.errors import HfkitError
from hfkit.schema import GenerationSection

BYTES = 4  # float32: scoring casts the model to fp32 (eval.dtype: float32, the default)
# Per step, each sequence's logits over the vocabulary exist a few times over (the logits, their
# log-softmax, beam search's running scores): 3 copies covers what was measured on SmolLM2.
SCORE_COPIES = 3


@dataclass(frozen=True)
class DecoderShape:
    """What a model's generation cache grows with, read from its config."""

    layers: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int | None

    def bytes_per_token(self) -> int:
        """Keys and values of one token of one sequence, across the layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * BYTES


def decoder_shape(config) -> DecoderShape | None:
    """The decoder's layers, key/value heads and head size (None when the config does not say)."""
    if config is None:
        return None
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config

    def first(*names):
        return next((value for name in names if isinstance(value := getattr(text, name, None), int) and value > 0),
                    None)

    layers = first("num_decoder_layers", "decoder_layers", "num_hidden_layers", "n_layer")
    heads = first("decoder_attention_heads", "num_attention_heads", "n_head")
    kv_heads = first("num_key_value_heads") or heads
    hidden = first("d_model", "hidden_size", "n_embd")
    head_dim = first("head_dim", "d_kv") or (hidden // heads if hidden and heads else None)
    vocab = first("vocab_size")
    if not (layers and kv_heads and head_dim and vocab):
        return None
    return DecoderShape(layers, kv_heads, head_dim, vocab, first("max_position_embeddings", "n_positions"))


def needed_bytes(shape: DecoderShape, settings: GenerationSection, batch_size: int, prompt_tokens: int) -> int:
    """The key/value cache and vocabulary scores of one generation batch at its longest."""
    sequences = batch_size * settings.num_beams
    cache = sequences * (prompt_tokens + settings.max_new_tokens) * shape.bytes_per_token()
    scores = sequences * shape.vocab * BYTES * SCORE_COPIES
    return cache + scores


def available_bytes() -> int:
    """Free memory where scoring runs: the GPU's, or the machine's available RAM."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.mem_get_info()[0]
    import psutil  # accelerate's dependency

    return psutil.virtual_memory().available


def check(strategies: list[tuple[str, GenerationSection]], config, batch_size: int, prompt_tokens: int,
          encoder_decoder: bool, available: int | None = None) -> None:
    """Refuse a decoding setting that cannot fit, in one line naming its key (or --decode strategy).

    `prompt_tokens`: the longest prompt (a decoder's prompt budget, an encoder's source length);
    `strategies`: (where it was set, the settings), e.g. ("generation", recipe.generation)."""
    shape = decoder_shape(config)
    if shape is None:
        return
    free = available_bytes() if available is None else available
    for where, settings in strategies:
        if encoder_decoder and shape.max_positions and settings.max_new_tokens > shape.max_positions:
            raise HfkitError(f"{_key(where, 'max_new_tokens')}: {settings.max_new_tokens} new tokens is more than this "
                             f"model's decoder takes ({shape.max_positions} positions); set it to at most "
                             f"{shape.max_positions}")
        needed = needed_bytes(shape, settings, batch_size, prompt_tokens)
        if needed <= free:
            continue
        beams = settings.num_beams
        per_beam = needed_bytes(shape, settings.model_copy(update={"num_beams": 1}), batch_size, prompt_tokens)
        if beams > 1 and per_beam <= free:
            key, fix = _key(where, "num_beams"), f"use at most {free // per_beam} beams"
        else:
            fits = (free // (batch_size * beams) - shape.vocab * BYTES * SCORE_COPIES) // shape.bytes_per_token()
            key = _key(where, "max_new_tokens")
            fix = (f"use at most {fits - prompt_tokens} new tokens" if fits > prompt_tokens
                   else "use fewer beams or a shorter prompt budget")
        raise HfkitError(
            f"{key}: {beams} beam(s) x {batch_size} prompts per eval batch x {prompt_tokens + settings.max_new_tokens} "
            f"tokens need ~{_size(needed)} for the generation cache and scores alone ({shape.layers} layers, "
            f"vocabulary {shape.vocab:,}, float32), more than the {_size(free)} of memory available; {fix} "
            "(or lower training.per_device_eval_batch_size)")


def _key(where: str, name: str) -> str:
    return f"generation.{name}" if where == "generation" else where


def _size(count: int) -> str:
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 2**10:.0f} KB"
