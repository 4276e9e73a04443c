"""LoRA dropout folded into lora_A (hfkit.lora_dropout): peft's gradients, without peft's fp32 copies."""

import pytest
import torch

from hfkit.lora_dropout import SeededDropoutLinear, dropout_mask, fold_dropout


def lora_model(folder, dropout: float, dtype=torch.float32, fold: bool = False):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear"))
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.02)  # nonzero, so lora_A and the inputs get gradients
    if fold:
        assert fold_dropout(model) == 14  # 7 linear layers x 2 blocks
    return model


INPUTS = torch.randint(3, 300, (3, 20), generator=torch.Generator().manual_seed(1))


def loss_and_grads(model, seed: int = 0):
    model.train()
    model.zero_grad()
    torch.manual_seed(seed)
    loss = model(input_ids=INPUTS, labels=INPUTS).loss
    loss.backward()
    return loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])


def test_without_dropout_the_folded_layers_are_peft_exactly_in_fp32(tiny_llama):
    loss, grads = loss_and_grads(lora_model(tiny_llama, 0.0))
    folded_loss, folded_grads = loss_and_grads(lora_model(tiny_llama, 0.0, fold=True))
    assert folded_loss == loss
    torch.testing.assert_close(folded_grads, grads, atol=0, rtol=0)


def test_on_a_bf16_base_the_adapters_compute_in_bf16_as_close_to_fp32_as_peft(tiny_llama):
    """peft upcasts a bf16 base's activations and computes LoRA in fp32; folded, the adapters compute in
    bf16 from fp32 weights. Against the same model in fp32, both are off by bf16 rounding alike."""
    exact_loss, exact = loss_and_grads(lora_model(tiny_llama, 0.0))
    peft_loss, peft_grads = loss_and_grads(lora_model(tiny_llama, 0.0, torch.bfloat16))
    model = lora_model(tiny_llama, 0.0, torch.bfloat16, fold=True)
    output_dtypes = set()
    hooks = [module.register_forward_hook(lambda m, args, out: output_dtypes.add(out.dtype))
             for name, module in model.named_modules() if name.endswith("lora_B.default")]
    folded_loss, folded_grads = loss_and_grads(model)
    for hook in hooks:
        hook.remove()
    assert output_dtypes == {torch.bfloat16} and len(hooks) == 14
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # fp32 master weights
    assert folded_grads.dtype == torch.float32

    def off(grads):
        return ((grads - exact).norm() / exact.norm()).item()

    assert off(peft_grads) > 1e-3  # bf16 rounding is visible at all
    assert off(folded_grads) <= 1.25 * off(peft_grads)  # measured 0.0073 vs 0.0069
    assert abs(folded_loss - exact_loss) <= 2**-8 * exact_loss
    assert abs(folded_loss - peft_loss) <= 2**-8 * exact_loss


def test_a_seeded_layer_is_dropout_then_linear_with_the_seeds_mask():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 4, bias=False)
    layer = torch.nn.Linear(16, 4, bias=False)
    layer.load_state_dict(linear.state_dict())
    layer.__class__, layer.p = SeededDropoutLinear, 0.25
    x = torch.randn(2, 5, 16, dtype=torch.bfloat16, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()

    torch.manual_seed(7)
    y = layer(x)
    torch.manual_seed(7)
    seed = int(torch.randint(2**62, (1,)))  # the seed the layer drew
    mask = dropout_mask(x.shape, 0.25, seed, x.device)
    # the mask applied in fp32, then the layer in the input's dtype (bf16) from its fp32 weight
    y_ref = torch.nn.functional.linear((x_ref.float() * mask).to(x.dtype), linear.weight.to(x.dtype))
    torch.testing.assert_close(y, y_ref, atol=0, rtol=0)
    assert 0.6 < (mask > 0).float().mean() < 0.9 and mask.max() == pytest.approx(1 / 0.75)

    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(layer.weight.grad, linear.weight.grad, atol=1e-6, rtol=1e-5)
    assert x.grad.dtype == torch.bfloat16
    torch.testing.assert_close(x.grad, x_ref.grad, atol=0, rtol=0)


def test_with_dropout_the_expected_gradient_is_pefts(tiny_llama):
    """Averaged over 60 dropout draws, the folded layers' gradient is peft's nn.Dropout one: the
    two differ by about what two sets of peft's own draws differ by."""
    draws = 60
    peft_model, folded = lora_model(tiny_llama, 0.1), lora_model(tiny_llama, 0.1, fold=True)
    ours = sum(loss_and_grads(folded, seed)[1] for seed in range(draws)) / draws
    theirs = sum(loss_and_grads(peft_model, seed)[1] for seed in range(1000, 1000 + draws)) / draws
    again = sum(loss_and_grads(peft_model, seed)[1] for seed in range(2000, 2000 + draws)) / draws
    without = loss_and_grads(lora_model(tiny_llama, 0.0))[1]
    spread = (theirs - again).norm()
    assert (ours - theirs).norm() < 2 * spread
    assert (ours - without).norm() > spread / 4  # dropout is really on


def test_the_folded_layers_keep_no_fp32_copy_of_their_input(tiny_llama):
    """What autograd keeps for the backward pass, bf16 base: peft keeps an fp32 copy of each LoRA
    layer's input (and with dropout a second one, the mask); folded, only the bf16 input itself."""

    def kept_bytes(model) -> int:
        storages = {}

        def pack(tensor):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
            return tensor

        model.train()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(input_ids=INPUTS, labels=INPUTS)
        return sum(storages.values())

    peft_default = kept_bytes(lora_model(tiny_llama, 0.05, torch.bfloat16))
    peft_no_dropout = kept_bytes(lora_model(tiny_llama, 0.0, torch.bfloat16))
    folded = kept_bytes(lora_model(tiny_llama, 0.05, torch.bfloat16, fold=True))
    assert folded < peft_no_dropout < peft_default
    inputs_fp32 = INPUTS.numel() * 4 * (6 * 64 + 128) * 2  # q,k,v,o,gate,up take 64 features, down 128; 2 blocks
    assert peft_default - folded >= 1.5 * inputs_fp32  # both fp32 copies (the dropped input and the mask) are gone


def test_gradient_checkpointing_recomputes_the_same_mask(tiny_llama):
    """Checkpointing reruns the forward pass in backward with the RNG state restored: the seed, and
    so the mask, are the first pass's, and the gradients those without checkpointing."""
    plain = lora_model(tiny_llama, 0.2, fold=True)
    checkpointed = lora_model(tiny_llama, 0.2, fold=True)
    checkpointed.get_base_model().activation_checkpointing_enable()
    loss, grads = loss_and_grads(plain, seed=3)
    checkpointed_loss, checkpointed_grads = loss_and_grads(checkpointed, seed=3)
    assert checkpointed_loss == pytest.approx(loss.item(), abs=1e-6)
    torch.testing.assert_close(checkpointed_grads, grads, atol=1e-6, rtol=1e-5)
