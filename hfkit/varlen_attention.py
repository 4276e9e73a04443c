"""Variable-length attention through sdpa, for padding-free training rows on any device.

A padding-free batch is one row holding several examples. transformers' `sdpa` attention then
computes a dense [tokens x tokens] product under a block-diagonal mask (the square of the whole
row: 2.2x slower than padded batches on SmolLM2 here), and only flash-attention kernels take the
examples' boundaries instead. This registers `hfkit_sdpa_varlen`, an attention implementation that
is transformers' own sdpa function, called once per example when the batch carries those boundaries
(`cu_seq_lens_q`, as transformers' DataCollatorWithFlattening hands them to flash-attention) and
exactly as `sdpa` otherwise: evaluation, generation and padded batches build the same masks and get
the same numbers. Each example attends causally to itself only, as under the block-diagonal mask,
and no padding position is computed anywhere in the model (README, Packing).
"""

from __future__ import annotations

from hfkit.models import unwrapped

NAME = "hfkit_sdpa_varlen"


def sdpa_per_example(module, query, key, value, attention_mask, cu_seq_lens_q=None, **kwargs):
    """transformers' sdpa_attention_forward, per example of a packed row when its boundaries are given."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    dtype = query.dtype
    if query.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        # The CPU kernel's backward is slower in bf16 than in fp32 at these lengths (SmolLM2's shapes,
        # forward + backward of one example: 100 tokens 2.26 -> 0.98 ms, 179: 4.31 -> 2.49, 300:
        # 7.25 -> 6.21, 500: equal; benchmarks/attention_dtype.py); fp32 is also the more exact.
        query, key, value = query.float(), key.float(), value.float()
    lengths = cu_seq_lens_q.diff().tolist()
    # split, not slices: the backward of a slice writes into a zeroed tensor of the whole row (one
    # per example and tensor: 6% of a step in fills), a split's backward is one concatenation.
    pieces = zip(*(tensor.split(lengths, dim=2) for tensor in (query, key, value)))
    outputs = [sdpa_attention_forward(module, q, k, v, None, **kwargs)[0] for q, k, v in pieces if q.shape[2]]
    return torch.cat(outputs, dim=1).to(dtype), None


def register() -> None:
    """Make `hfkit_sdpa_varlen` known to transformers (its masks are sdpa's)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, sdpa_per_example)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def available(model) -> bool:
    """Can this model's attention use a packed row's example boundaries? flash-attention takes them
    as it is; a model on `sdpa` can switch to `hfkit_sdpa_varlen`; eager and others cannot (they
    compute the dense product)."""
    base = unwrapped(model)
    config = getattr(base, "config", None)
    implementation = str(getattr(config, "_attn_implementation", ""))
    if implementation.startswith("flash_attention") or implementation == NAME:
        return True
    return (implementation == "sdpa" and not getattr(config, "is_encoder_decoder", False)
            and base._can_set_attn_implementation())


def enable(model) -> None:
    """Switch a model on `sdpa` to `hfkit_sdpa_varlen` (the same numbers on every batch without boundaries)."""
    base = unwrapped(model)
    if base.config._attn_implementation == "sdpa":
        register()
        base.set_attn_implementation(NAME)
