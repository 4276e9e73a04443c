#!/usr/bin/env bash
# GPU benchmark: tokens/s and model FLOPs utilisation (MFU) of SmolLM2-135M fine-tuning in bf16 on
# one GPU, LoRA, QLoRA (4-bit NF4 base) and full, in under 10 minutes:
#   bash benchmarks/gpu_bench.sh          (after `make install`; set HFKIT/PY otherwise)
# MFU = achieved model FLOPs / the GPU's peak bf16 FLOPs (PEAK_TFLOPS, default from the GPU name).
# Model FLOPs per trained token: 6N for full fine-tuning (forward 2N, backward 4N); about 4N for
# LoRA (the frozen weights need no weight gradients), N = 134.5M parameters.
set -euo pipefail
cd "$(dirname "$0")/.."
HFKIT=${HFKIT:-.venv/bin/hfkit}
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-0}
out=runs/gpu_bench
rm -rf "$out"
common=(training.bf16=true training.tf32=true training.include_num_input_tokens_seen=non_padding
        training.max_steps=100 training.per_device_train_batch_size=32 training.logging_steps=1000
        data.format=text data.block_size=512 data.train_file=recipes/summarization/data/briefs_train.jsonl
        data.validation_file=null data.columns='{document: text}' data.validation_fraction=0.05
        data.max_eval_samples=16 eval.baseline=false eval.metrics=[] "output.dir=$out" output.timestamp=false)
$HFKIT train recipes/generation/demo.yaml "${common[@]}" output.name=lora
$HFKIT train recipes/generation/demo.yaml "${common[@]}" peft.method=qlora output.name=qlora
$HFKIT train recipes/generation/demo.yaml "${common[@]}" peft.method=none training.learning_rate=5e-5 output.name=full

$PY - "$out" <<'PY'
import json, os, sys
from pathlib import Path
import torch

name = torch.cuda.get_device_name(0)
peaks = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10G": 125, "RTX 4090": 165}
peak = float(os.environ.get("PEAK_TFLOPS") or next((v for k, v in peaks.items() if k in name), 0)) * 1e12
N = 134_515_008
print(f"\nGPU: {name}, peak bf16 {peak / 1e12:.0f} TFLOPs\n")
print("| run | tokens/s | samples/s | peak GPU memory (MiB) | MFU |")
print("|---|---|---|---|---|")
for run, flops_per_token in (("lora", 4 * N), ("qlora", 4 * N), ("full", 6 * N)):
    metrics = json.loads((Path(sys.argv[1]) / run / "metrics.json").read_text())
    tokens = metrics["train"]["tokens_per_second"] or 0
    mfu = f"{tokens * flops_per_token / peak:.1%}" if peak else "n/a (set PEAK_TFLOPS)"
    print(f"| {run} | {tokens:,.0f} | {metrics['train']['samples_per_second']} | "
          f"{metrics['peak_memory_mb'].get('cuda')} | {mfu} |")
PY
