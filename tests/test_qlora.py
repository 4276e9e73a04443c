"""QLoRA (peft.method: qlora): a 4-bit NF4 base through bitsandbytes' CPU backend, LoRA on top."""

import json
import subprocess
import sys

import pytest
from support import record_of, run_hfkit, tiny_recipe

pytest.importorskip("bitsandbytes")  # hfkit[qlora]; `make test` installs it


def test_qlora_trains_saves_an_adapter_that_eval_scores_and_merge_dequantises(tiny_llama, tmp_path):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    trained = run_hfkit("train", str(recipe), "peft.method=qlora", "training.max_steps=4", "output.name=q",
                        "output.timestamp=false", cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "kernels-community" not in trained.stdout + trained.stderr  # no Hub kernel asked for, nothing said
    assert "autograd kernel was not registered" not in trained.stderr
    run = tmp_path / "runs" / "q"
    record = record_of(run)
    assert record.method == "qlora" and record.status == "complete"
    assert record.final.metrics["eval_loss"] < record.baseline.metrics["eval_loss"]  # it learned
    assert record.final.dtype == "float32"  # scored with the NF4 weights dequantised to fp32
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and (run / "adapter" / "adapter_model.safetensors").is_file()
    assert not (run / "model").exists()

    scored = run_hfkit("eval", str(run), cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-3000:]
    (again,) = run.glob("eval-*")
    assert record_of(again).final.metrics == record.final.metrics

    merged = run_hfkit("merge", str(run), cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr[-3000:]
    said = " ".join(merged.stdout.split())
    assert "dequantised to float32" in said and "not the original checkpoint's" in said
    zero_shot = run_hfkit("eval", str(recipe), f"model.name_or_path={run / 'merged'}", "peft.method=none",
                          "output.name=merged", "output.timestamp=false", cwd=tmp_path)
    assert zero_shot.returncode == 0, zero_shot.stderr[-3000:]
    merged_loss = record_of(tmp_path / "runs" / "merged").baseline.metrics["eval_loss"]
    assert merged_loss == pytest.approx(record.final.metrics["eval_loss"], abs=1e-4)  # the weights it trained with


def test_scoring_leaves_the_4bit_layers_trainable(tiny_llama, tmp_path):
    """bitsandbytes rewrites a 4-bit layer used in evaluation mode on an AVX512-BF16 CPU into an
    inference layout with no backward; a baseline scored before training must not do that."""
    import torch

    from hfkit import job, qlora
    from hfkit.recipe import load_recipe

    recipe = load_recipe(tiny_recipe(tmp_path, tiny_llama), ["peft.method=qlora"])
    task = job.bind(recipe)
    tokenizer = job.load_tokenizer(task, str(tiny_llama))
    model = job.load_model(recipe, task, tokenizer)
    layers = qlora.four_bit_layers(model)
    assert len(layers) == 14
    model.eval()
    with torch.no_grad():
        model(input_ids=torch.tensor([[5, 6, 7]]))
    assert not any(getattr(layer.weight.quant_state, "packing_format_for_cpu", False) for layer in layers)
    model.train()
    model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([[5, 6, 7]])).loss.backward()
    # the first block's adapters get gradients only through the 4-bit layers above them
    first = [p for n, p in model.named_parameters() if "layers.0." in n and "lora_B" in n]
    assert first and all(p.grad is not None and p.grad.abs().sum() > 0 for p in first)


def test_bitsandbytes_asks_the_hub_for_no_kernel():
    code = ("import hfkit, bitsandbytes.backends.cpu.ops as ops, kernels; "
            "print(getattr(ops, 'gemm_4bit_forward_kernel', None), kernels.get_kernel is not None)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["None", "True"]  # no Hub kernel; the `kernels` package itself still imports
    assert "kernels-community" not in result.stderr


def test_qlora_refuses_what_it_cannot_do(monkeypatch):
    import importlib.util

    from hfkit import qlora
    from hfkit.errors import HfkitError
    from hfkit.schema import ModelSection

    model = ModelSection(name_or_path="x")
    with pytest.raises(HfkitError, match=r"extractive|trains a new layer in full \(qa_outputs\)"):
        qlora.check(model, ("qa_outputs",), False)
    with pytest.raises(HfkitError, match="bert2bert"):
        qlora.check(model, (), True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(HfkitError, match=r'pip install "hfkit\[qlora\]"'):
        qlora.check(model, (), False)
