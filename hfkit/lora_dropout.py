"""LoRA's input path without peft's fp32 copies: dropout from a seed, regenerated in the backward pass.

peft computes `lora_B(lora_A(dropout(x.to(float32))))`: under a bf16 base every LoRA layer makes an
fp32 copy of its input, `lora_A` keeps it (or, with dropout, keeps the dropped copy while dropout
keeps an fp32 mask) for the backward pass. On SmolLM2 at batch 8 x up to 512 tokens, all-linear,
that was ~3.6 GB for dropout 0.05 alone (README, Memory). Here `lora_A` and the dropout are one
autograd Function that keeps only `x` as it came (bf16, and the same tensor for q/k/v, which share
their input) and a seed: the backward pass casts `x` again and regenerates the same mask from the
seed. On an fp32 base its forward and gradients are those of `lora_A(dropout(x))` with that mask
(tests/test_lora_dropout.py); the mask is drawn as nn.Dropout's (keep with probability 1 - p, scale
by 1 / (1 - p)), so the expected gradient is peft's.

On a bf16 base (no autocast) both adapter matrices also compute in bf16, from their fp32 weights,
as mixed precision computes any layer: peft instead upcasts the input and adds an fp32 LoRA output
to the bf16 base output, casts that cost more than the adapters' matmuls (r=8). The weights, their
gradients and the optimizer stay fp32; the gradients are bf16 matmuls' (fp32 accumulation, rounded
once), and the layer's output is within bf16 rounding of peft's (tests/test_lora_dropout.py).
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


def compute_dtype(x, weight) -> torch.dtype:
    """bf16 where the input is bf16 and the weight fp32 (a bf16 base); the weight's dtype otherwise."""
    return x.dtype if x.dtype == torch.bfloat16 and weight.dtype == torch.float32 else weight.dtype


class SeededDropoutLinearFunction(torch.autograd.Function):
    """y = (x times the seed's dropout mask) @ weight.T in the compute dtype; keeps x and the seed only."""

    @staticmethod
    def forward(ctx, x, weight, p: float, seed: int):
        ctx.save_for_backward(x, weight)
        ctx.p, ctx.seed = p, seed
        dtype = compute_dtype(x, weight)
        return F.linear(_dropped(x, dtype, p, seed), weight.to(dtype))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        dtype = compute_dtype(x, weight)
        mask = dropout_mask(x.shape, ctx.p, ctx.seed, x.device) if ctx.p else None
        grad_x = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_x = grad.to(dtype) @ weight.to(dtype)
            grad_x = (grad_x.float() * mask if mask is not None else grad_x).to(x.dtype)
        if ctx.needs_input_grad[1]:
            dropped = _dropped(x, dtype, ctx.p, ctx.seed, mask)
            grad_weight = grad.to(dtype).reshape(-1, grad.shape[-1]).T @ dropped.reshape(-1, x.shape[-1])
            grad_weight = grad_weight.to(weight.dtype)
        return grad_x, grad_weight, None, None


def _dropped(x, dtype, p: float, seed: int, mask=None):
    """x times the seed's mask (applied in fp32, so the 1 / (1 - p) scale is exact), in `dtype`."""
    if not p:
        return x.to(dtype)
    mask = dropout_mask(x.shape, p, seed, x.device) if mask is None else mask
    return (x.to(torch.float32) * mask).to(dtype)


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


class ComputeDtypeLinear(torch.nn.Linear):
    """peft's `lora_B` computing in its input's dtype where `lora_A` handed it bf16 (fp32 weight kept)."""

    def forward(self, x):
        dtype = compute_dtype(x, self.weight)
        return F.linear(x, self.weight.to(dtype), None if self.bias is None else self.bias.to(dtype))


def fold_dropout(model) -> int:
    """Give every plain LoRA layer of a peft model the seeded path; returns how many layers changed.

    DoRA and other variants keep peft's own path (their forward reads the dropout themselves)."""
    changed = 0
    for module in model.modules():
        lora_a, dropouts = getattr(module, "lora_A", None), getattr(module, "lora_dropout", None)
        if not isinstance(lora_a, torch.nn.ModuleDict) or dropouts is None:
            continue
        for name, linear in list(lora_a.items()):
            lora_b = module.lora_B[name]
            if (name in getattr(module, "lora_variant", {}) or type(linear) is not torch.nn.Linear
                    or type(lora_b) is not torch.nn.Linear):
                continue
            linear.__class__ = SeededDropoutLinear  # the same module and weight, a forward that knows p
            lora_b.__class__ = ComputeDtypeLinear  # takes lora_A's output in the dtype it computed in
            linear.p = getattr(dropouts[name], "p", 0.0)
            dropouts[name] = torch.nn.Identity()
            module.cast_input_dtype_enabled = False  # x reaches lora_A as it is; the Function casts it
            changed += 1
    return changed
