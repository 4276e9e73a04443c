"""The loss that makes its gradient in the forward pass equals transformers' ForCausalLMLoss."""

import pytest
import torch
from transformers.loss.loss_utils import ForCausalLMLoss

from hfkit import fused_loss


def logits_and_labels(dtype, rows=150, vocab=1000, shape=None):
    torch.manual_seed(0)
    logits = (torch.randn(rows, vocab) * 3).to(dtype)  # 150 rows: two full chunks of 64 and a short one
    labels = torch.randint(vocab, (rows,))
    labels[::7] = -100  # ignored rows carry neither loss nor gradient
    if shape is not None:
        logits, labels = logits.reshape(*shape, vocab), labels.reshape(shape)
    return logits.requires_grad_(True), labels


def loss_and_grad(function, logits, labels, scale=1.0, **kwargs):
    logits = logits.detach().clone().requires_grad_(True)
    loss = function(logits, labels, logits.shape[-1], **kwargs)
    (loss * scale).backward()
    return loss.detach(), logits.grad


@pytest.mark.parametrize("num_items", [None, 97], ids=["mean", "num_items_in_batch"])
def test_fp32_loss_and_gradient_equal_the_reference(num_items):
    logits, labels = logits_and_labels(torch.float32)
    kwargs = {"shift_labels": labels, "num_items_in_batch": torch.tensor(num_items) if num_items else None}
    reference = loss_and_grad(ForCausalLMLoss, logits, labels, **kwargs)
    ours = loss_and_grad(fused_loss.causal_lm_loss, logits, labels, **kwargs)
    torch.testing.assert_close(ours[0], reference[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(ours[1], reference[1], rtol=0, atol=1e-8)
    assert ours[1][::7].abs().max() == 0  # ignored rows


def test_unshifted_labels_are_shifted_as_the_reference_does():
    logits, labels = logits_and_labels(torch.float32, shape=(3, 50))
    reference = loss_and_grad(ForCausalLMLoss, logits, labels)
    ours = loss_and_grad(fused_loss.causal_lm_loss, logits, labels)
    torch.testing.assert_close(ours[0], reference[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(ours[1], reference[1], rtol=0, atol=1e-8)


def test_bf16_loss_is_the_reference_and_the_gradient_within_bf16_rounding():
    logits, labels = logits_and_labels(torch.bfloat16)
    reference = loss_and_grad(ForCausalLMLoss, logits, labels, shift_labels=labels)
    ours = loss_and_grad(fused_loss.causal_lm_loss, logits, labels, shift_labels=labels)
    assert ours[1].dtype == torch.bfloat16
    torch.testing.assert_close(ours[0], reference[0], rtol=1e-6, atol=0)  # fp32 arithmetic on the same logits
    # one bf16 rounding of the same fp32 gradient: at most one unit in the last place apart
    torch.testing.assert_close(ours[1].float(), reference[1].float(), rtol=2**-7, atol=1e-9)


def test_a_rescaled_loss_rescales_the_gradient():
    logits, labels = logits_and_labels(torch.float32)
    reference = loss_and_grad(ForCausalLMLoss, logits, labels, scale=2.5, shift_labels=labels)
    ours = loss_and_grad(fused_loss.causal_lm_loss, logits, labels, scale=2.5, shift_labels=labels)
    torch.testing.assert_close(ours[1], reference[1], rtol=0, atol=1e-8)


def test_without_gradients_it_is_the_reference_bit_for_bit():
    logits, labels = logits_and_labels(torch.bfloat16)
    with torch.no_grad():
        ours = fused_loss.causal_lm_loss(logits, labels, logits.shape[-1], shift_labels=labels)
        reference = ForCausalLMLoss(logits, labels, logits.shape[-1], shift_labels=labels)
    assert torch.equal(ours, reference)


def test_a_model_with_a_loss_of_its_own_keeps_it(tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert fused_loss.install(model) and model.loss_function is fused_loss.causal_lm_loss
    own = AutoModelForCausalLM.from_pretrained(tiny_llama)
    own.loss_function = lambda *args, **kwargs: None
    assert not fused_loss.install(own)
