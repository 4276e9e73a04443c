"""LoRA's input path without peft's fp32 copies: dropout from a seed, regenerated in the backward pass.

peft computes `lora_B(lora_A(dropout(x.to(float32))))`: under a bf16 base every LoRA layer makes an
fp32 copy of its input, `lora_A` keeps it (or, with dropout, keeps the dropped copy while dropout
keeps an fp32 mask) for the backward pass. On SmolLM2 at batch 8 x up to 512 tokens, all-linear,
that was ~3.6 GB for dropout 0.05 alone (README, Memory). Here `lora_A` and the dropout are one
autograd Function that keeps only `x` as it came (bf16, and the same tensor for q/k/v, which share
their input) and a seed: the backward pass casts `x` again and regenerates the same mask from the
seed. Its forward and gradients are those of `lora_A(dropout(x.float()))` with that mask
(tests/test_lora_dropout.py); the mask is drawn as nn.Dropout's (keep with probability 1 - p, scale
by 1 / (1 - p)), so the expected gradient is peft's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SEED_RANGE = 2**62


def dropout_mask(shape, p: float, seed: int, device) -> torch.Tensor:
    """The keep-mask (1 / (1 - p) where kept, 0 where dropped) that `seed` gives, in float32."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    keep = torch.empty(shape, dtype=torch.float32, device=device).bernoulli_(1 - p, generator=generator)
    return keep.div_(1 - p)


class SeededDropoutLinearFunction(torch.autograd.Function):
    """y = (x in the weight's dtype, times the seed's dropout mask) @ weight.T; keeps x and the seed only."""

    @staticmethod
    def forward(ctx, x, weight, p: float, seed: int):
        ctx.save_for_backward(x, weight)
        ctx.p, ctx.seed = p, seed
        return F.linear(_dropped(x, weight.dtype, p, seed), weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        mask = dropout_mask(x.shape, ctx.p, ctx.seed, x.device) if ctx.p else None
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = grad @ weight
            grad_x = (grad_x * mask if mask is not None else grad_x).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = x.to(weight.dtype) * mask if mask is not None else x.to(weight.dtype)
            grad_weight = grad.reshape(-1, grad.shape[-1]).T @ dropped.reshape(-1, x.shape[-1])
        return grad_x, grad_weight, None, None


def _dropped(x, dtype, p: float, seed: int):
    x = x.to(dtype)
    return x * dropout_mask(x.shape, p, seed, x.device) if p else x


class SeededDropoutLinear(torch.nn.Linear):
    """peft's `lora_A` with the layer's dropout folded in (same weight, same state-dict key)."""

    p: float = 0.0

    def forward(self, x):
        p = self.p if self.training else 0.0
        if torch.is_autocast_enabled(x.device.type):  # mixed precision: the ordinary path (autocast casts)
            return F.linear(F.dropout(x.to(self.weight.dtype), p, training=bool(p)), self.weight)
        # The seed comes from torch's generator, so set_seed fixes it and gradient checkpointing's
        # recomputation (which restores the RNG state) draws the same one.
        seed = int(torch.randint(SEED_RANGE, (1,))) if p else 0
        return SeededDropoutLinearFunction.apply(x, self.weight, p, seed)


def fold_dropout(model) -> int:
    """Give every plain LoRA layer of a peft model the seeded path; returns how many layers changed.

    DoRA and other variants keep peft's own path (their forward reads the dropout themselves)."""
    changed = 0
    for module in model.modules():
        lora_a, dropouts = getattr(module, "lora_A", None), getattr(module, "lora_dropout", None)
        if not isinstance(lora_a, torch.nn.ModuleDict) or dropouts is None:
            continue
        for name, linear in list(lora_a.items()):
            if name in getattr(module, "lora_variant", {}) or type(linear) is not torch.nn.Linear:
                continue
            linear.__class__ = SeededDropoutLinear  # the same module and weight, a forward that knows p
            linear.p = getattr(dropouts[name], "p", 0.0)
            dropouts[name] = torch.nn.Identity()
            module.cast_input_dtype_enabled = False  # x reaches lora_A as it is; the Function casts it
            changed += 1
    return changed
