"""LoRA through peft: which dtype the frozen base takes, wrapping, checking, counting."""

from __future__ import annotations

from pathlib import Path

from hfkit.errors import HfkitError
from hfkit.schema import ModelSection, PeftSection


def frozen_base_dtype(cfg: ModelSection, peft_cfg: PeftSection, new_heads: tuple[str, ...] = ()):
    """bfloat16 for the frozen base of a LoRA run, when the recipe leaves model.dtype on auto and the
    hardware computes bf16 natively; None otherwise (the checkpoint's own dtype).

    Under LoRA the base weights never change, so an fp32 copy only costs memory: on SmolLM2-135M
    (2 CPU cores with AVX512-BF16) bf16 cuts LoRA's peak RSS from 3.0 to 2.1 GB and trains 1.6x
    faster. The adapters stay fp32 (peft upcasts them). Runs with a new head (extractive QA) keep
    fp32, since that head is trained in full.
    """
    import torch

    if cfg.dtype != "auto" or peft_cfg.method != "lora" or new_heads or cfg.encoder_decoder:
        return None
    return torch.bfloat16 if bf16_is_native() else None


def settle_frozen_base(model, dtype) -> None:
    """Cast a LoRA model's frozen base to `dtype` (bf16), after it was loaded in the checkpoint's own
    dtype so that the untuned model could be scored on the checkpoint's weights (README: the baseline).

    The result equals loading the base in `dtype` and adding LoRA to it, parameter for parameter
    (tests/test_fidelity.py): the frozen weights are rounded to `dtype`; the adapters are rounded
    through it, as peft does when it creates them on such a base (init, cast to the base's dtype,
    upcast to fp32); DoRA's magnitudes are computed again from the rounded base, as peft computes them.
    """
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype) if not param.requires_grad else param.data.to(dtype).to(param.dtype)
    for module in model.modules():
        for name, dora in getattr(module, "lora_magnitude_vector", {}).items():
            kept = dora.weight.dtype
            dora.update_layer(base_layer=module.get_base_layer(), lora_A=module.lora_A[name].weight.to(dtype),
                              lora_B=module.lora_B[name].weight.to(dtype), scaling=module.scaling[name])
            dora.weight.data = dora.weight.data.to(kept)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.config.dtype = dtype


def bf16_is_native() -> bool:
    """A GPU that supports bf16, or a CPU with AVX512-BF16/AMX (elsewhere bf16 is emulated and slow)."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_target_modules(cfg: ModelSection, peft_cfg: PeftSection, auto_class: str, config) -> None:
    """LoRA target modules must match layers of the model, and its rank must be one they can use:
    checked on an empty (meta) copy of the model, before any weights load."""
    if not peft_cfg.adapter or config is None:
        return
    import torch
    import transformers
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = getattr(transformers, auto_class).from_config(config)
    names = [name for name, _ in model.named_modules()]
    targets = peft_cfg.target_modules
    if targets != "all-linear":
        missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
        if missing:
            raise HfkitError(f"peft.target_modules: {missing} match no layer of this model; its linear layers are: "
                             f"{', '.join(linear_module_names(model))} (or use 'all-linear')")
    widths = [min(module.in_features, module.out_features) for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and (targets == "all-linear" or name.rsplit(".", 1)[-1] in targets)]
    if widths and peft_cfg.r > max(widths):
        # An A (r x in) and B (out x r) pair holds no more than min(in, out) ranks; peft.r: 1e8 would
        # allocate 1e8 x 576 matrices and die for memory.
        raise HfkitError(f"peft.r: {peft_cfg.r} is more than the layers LoRA adapts can use: a rank above "
                         f"min(in, out) features ({max(widths)} at most here) adds nothing; use at most {max(widths)} "
                         "(8-64 is usual)")


def add_lora(model, peft_cfg: PeftSection, task_type: str, new_heads: tuple[str, ...] = ()):
    """Wrap `model` with LoRA adapters; a target list that matches nothing gets a clear error.

    Each LoRA layer's dropout and `lora_A` become one seeded autograd Function (hfkit.lora_dropout),
    which keeps no fp32 copy of the layer's input for the backward pass."""
    from peft import LoraConfig, get_peft_model

    from hfkit.lora_dropout import fold_dropout

    # A freshly initialised head (extractive QA's span scorer) is trained and saved in full,
    # and kept out of the LoRA targets, which "all-linear" would otherwise include.
    heads = list(new_heads)
    config = LoraConfig(
        task_type=task_type,
        r=peft_cfg.r,
        lora_alpha=peft_cfg.alpha,
        lora_dropout=peft_cfg.dropout,
        target_modules=peft_cfg.target_modules,
        use_dora=peft_cfg.use_dora,
        modules_to_save=heads or None,
        exclude_modules=heads or None,
    )
    try:
        wrapped = get_peft_model(model, config)
    except ValueError as err:
        if "target" not in str(err).lower():
            raise
        raise HfkitError(
            f"peft.target_modules: {peft_cfg.target_modules} matches no layer of this model; "
            f"its linear layers are: {', '.join(linear_module_names(model))} (or use 'all-linear')"
        ) from None
    fold_dropout(wrapped)
    return wrapped


def check_saved_adapter(folder: Path) -> None:
    """Refuse an adapter saved with empty tensors (DeepSpeed ZeRO-3 without gathering, peft #297)."""
    from safetensors import safe_open

    path = folder / "adapter_model.safetensors"
    with safe_open(str(path), framework="pt") as weights:
        names = list(weights.keys())
        empty = [name for name in names if 0 in weights.get_slice(name).get_shape()]
    if empty or not names:
        raise HfkitError(f"the adapter saved in {folder} has {len(empty) or 'no'} empty tensors: the weights were not "
                         "gathered before saving. Under DeepSpeed ZeRO-3 set zero3_save_16bit_model: true "
                         "(accelerate_configs/deepspeed_zero3.yaml does)")


def linear_module_names(model) -> list[str]:
    """Distinct short names of the linear layers LoRA can target (q_proj, v_proj, ...)."""
    import torch

    names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    return sorted(names)


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
