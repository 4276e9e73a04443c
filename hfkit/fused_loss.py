"""A causal LM's training loss whose gradient is computed in the forward pass, a few rows at a time.

transformers' `ForCausalLMLoss` upcasts the whole [positions x vocabulary] logits to fp32, keeps that
copy and log-softmax's output for the backward pass, and walks both again there: on SmolLM2 (49,152
tokens) at the ~730 target positions of a step that is four passes over ~140 MB each, ~0.2 s of a
~2.8 s LoRA step on this CPU. Here each chunk of rows is upcast, its log-sum-exp and its gradient
(softmax minus the one-hot label, times the loss's scale) computed while the chunk is in cache, and
only that gradient is kept, in the logits' dtype: the same fp32 arithmetic as the reference, with
the gradient rounded to the logits' dtype exactly where the reference's `.float()` rounds it on the
way back (tests/test_fused_loss.py: loss and gradients equal in fp32, bf16 within its rounding).

It runs where it pays: a loss with gradients. Evaluation and anything under no_grad take
transformers' own function, so eval losses are the reference's bit for bit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.loss.loss_utils import ForCausalLMLoss

ROWS_PER_CHUNK = 64  # 64 x 49,152 fp32 = 12.6 MB; measured best of 16/64/256 on SmolLM2's vocabulary


class CrossEntropyWithGradient(torch.autograd.Function):
    """sum over rows of (logsumexp(logits) - logits[label]) * scale; the gradient made in the forward."""

    @staticmethod
    def forward(ctx, logits, labels, scale: float, ignore_index: int):
        gradient = torch.empty_like(logits)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        for start in range(0, logits.shape[0], ROWS_PER_CHUNK):
            rows = logits[start:start + ROWS_PER_CHUNK].float()
            labels_here = labels[start:start + ROWS_PER_CHUNK]
            counted = labels_here != ignore_index
            picked = labels_here.clamp(min=0)[:, None]
            log_normalizer = torch.logsumexp(rows, dim=-1, keepdim=True)
            total += ((log_normalizer - rows.gather(1, picked)).squeeze(1) * counted).sum()
            probabilities = rows.sub_(log_normalizer).exp_()
            probabilities.scatter_add_(1, picked, -torch.ones_like(picked, dtype=rows.dtype))
            probabilities.mul_(counted[:, None] * scale)  # ignored rows: no loss, no gradient
            gradient[start:start + ROWS_PER_CHUNK] = probabilities
        ctx.save_for_backward(gradient)
        return total * scale

    @staticmethod
    def backward(ctx, grad_output):
        (gradient,) = ctx.saved_tensors
        if grad_output.item() != 1.0:  # Trainer's loss is usually not rescaled: keep the rounding exact then
            gradient = (gradient.float() * grad_output).to(gradient.dtype)
        return gradient, None, None, None


def causal_lm_loss(logits, labels, vocab_size: int, num_items_in_batch=None, ignore_index: int = -100,
                   shift_labels=None, **kwargs):
    """`ForCausalLMLoss`'s signature and value; with gradients, computed by CrossEntropyWithGradient."""
    if not (torch.is_grad_enabled() and logits.requires_grad):
        return ForCausalLMLoss(logits, labels, vocab_size, num_items_in_batch=num_items_in_batch,
                               ignore_index=ignore_index, shift_labels=shift_labels, **kwargs)
    if shift_labels is None:  # tokens < n predict n, as the reference shifts
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    shift_labels = shift_labels.reshape(-1).to(logits.device)
    # The reference divides a sum by the tokens counted across the batch, or else takes the mean.
    count = num_items_in_batch if num_items_in_batch is not None else (shift_labels != ignore_index).sum()
    scale = 1.0 / float(count) if count else float("nan")  # nothing counted: the reference's mean is nan too
    return CrossEntropyWithGradient.apply(logits.reshape(-1, vocab_size), shift_labels, scale, ignore_index)


def install(model) -> bool:
    """Give a causal LM (the transformers model itself, not a wrapper) this loss, where it computes
    transformers' default `ForCausalLMLoss` (a model with a loss of its own keeps it)."""
    if model.loss_function is not ForCausalLMLoss:
        return False
    model.loss_function = causal_lm_loss
    return True
