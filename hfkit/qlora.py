"""QLoRA (`peft.method: qlora`): the frozen base in 4-bit NF4 through bitsandbytes, LoRA on top.

The base's linear layers are stored as NF4 with double quantisation (the quantisation constants
quantised too) and computed in bf16 where the hardware has it (else fp32; `model.dtype` chooses
otherwise); the rest of the frozen base (embeddings, norms, the LM head) is kept in that same dtype,
as hfkit's LoRA keeps its frozen base. peft's `prepare_model_for_kbit_training` is not used: it casts everything unquantised to
fp32, so every activation between the 4-bit layers is fp32 too; on SmolLM2 at batch 8 x 512 one
QLoRA step then peaked at 7.38 GB of RSS against 4.59 GB for LoRA on a bf16 base. What else it does
hfkit does too (peft freezes the base) or leaves to the memory plan (gradient checkpointing).
On a CPU QLoRA is a memory lever, not a speed one: bitsandbytes dequantises every weight at every
use (README, QLoRA).

`pip install "hfkit[qlora]"` installs bitsandbytes. When imported (and peft imports it whenever it
is installed, for every LoRA run too) bitsandbytes 0.50 asks the `kernels` package for a CPU kernel
from the Hub, code from a repository run without asking; offline it logs that it could not. hfkit
runs no code from the Hub unless a recipe says so: `keep_bitsandbytes_off_the_hub` (called when
hfkit is imported) makes that one request fail quietly, and bitsandbytes uses its built-in CPU path.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from typing import TYPE_CHECKING

from hfkit.errors import HfkitError

if TYPE_CHECKING:
    from hfkit.schema import ModelSection

HUB_KERNEL_MODULE = "bitsandbytes.backends.cpu.ops"  # imports `kernels` and calls get_kernel(...) at import


class _WithoutKernels(importlib.abc.Loader):
    """Runs a module with `kernels` unimportable (its `from kernels import get_kernel` fails)."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        missing = object()
        saved = sys.modules.get("kernels", missing)
        sys.modules["kernels"] = None
        try:
            self.loader.exec_module(module)
        finally:
            if saved is missing:
                del sys.modules["kernels"]
            else:
                sys.modules["kernels"] = saved


class _BitsandbytesFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != HUB_KERNEL_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutKernels(spec.loader)
        return spec


def keep_bitsandbytes_off_the_hub() -> None:
    """bitsandbytes' CPU backend, when imported, gets no Hub kernel and says nothing about it."""
    if not any(isinstance(finder, _BitsandbytesFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _BitsandbytesFinder())
    logging.getLogger(HUB_KERNEL_MODULE).setLevel(logging.ERROR)  # "Failed to load ... from kernels-community"


def check(model: ModelSection, new_heads: tuple[str, ...], encoder_decoder_pair: bool) -> None:
    """QLoRA needs bitsandbytes, a pretrained base to quantise, and no layer trained in full."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise HfkitError("peft.method: qlora needs bitsandbytes; pip install \"hfkit[qlora]\" (or bitsandbytes)")
    if new_heads:
        raise HfkitError(f"peft.method: qlora quantises the whole base, but this task trains a new layer in full "
                         f"({', '.join(new_heads)}); use peft.method: lora")
    if encoder_decoder_pair:
        raise HfkitError("peft.method: qlora: a bert2bert model (model.encoder_decoder) is built from two "
                         "checkpoints, not loaded quantised; use peft.method: lora")


def compute_dtype(cfg: ModelSection):
    """`model.dtype`, or on auto bf16 where the hardware computes it natively, else fp32."""
    import torch

    from hfkit.lora import bf16_is_native

    if cfg.dtype != "auto":
        return getattr(torch, cfg.dtype)
    return torch.bfloat16 if bf16_is_native() else torch.float32


def load_base(cfg: ModelSection, auto_class: str, tokenizer):
    """The recipe's model with its linear layers in NF4 (double quantisation) on this process's
    device, the rest in the compute dtype; see `settle`."""
    import torch
    from transformers import BitsAndBytesConfig

    from hfkit.models import load_base_model

    dtype = compute_dtype(cfg)
    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                bnb_4bit_compute_dtype=dtype)
    if torch.cuda.is_available():
        from accelerate import PartialState

        device = f"cuda:{PartialState().local_process_index}"
    else:
        device = "cpu"
    model = load_base_model(cfg, auto_class, tokenizer, dtype=dtype, quantization_config=config,
                            device_map={"": device})
    return settle(model)


def settle(model):
    """The freshly loaded 4-bit model, fixed in two ways (returned).

    - Every 4-bit layer stays in bitsandbytes' training layout. On a CPU with AVX512-BF16, a 4-bit
      layer's first forward in evaluation mode rewrites its weight, for good, into an inference
      layout whose kernel computes in bf16 and has no backward: after a baseline scoring, training
      then backpropagated through it with a warning that the gradients may be wrong, and fp32
      scoring ran in bf16. In the training layout a 4-bit layer dequantises into the compute dtype
      and multiplies with torch, in both modes.
    - The parameters left unquantised (embeddings, norms) get memory of their own: loaded in the
      checkpoint's own dtype they are views of the memory-mapped checkpoint file, which keeps every
      page of it that quantising read resident (300 MB more RSS on SmolLM2's fp32 file)."""
    import torch

    for layer in four_bit_layers(model):
        layer.support_avx512bf16_for_cpu = False
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.data = tensor.data.clone()
    return model


def four_bit_layers(model) -> list:
    """The bitsandbytes 4-bit linear layers of `model` (none when bitsandbytes was never imported)."""
    import sys

    bnb = sys.modules.get("bitsandbytes")
    return [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)] if bnb else []


def dequantized(model, dtype):
    """The 4-bit base as an ordinary model in `dtype` (its NF4 values, not the original weights)."""
    return model.dequantize(dtype=dtype).to(dtype)
