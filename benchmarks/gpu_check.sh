#!/usr/bin/env bash
# GPU check for `launch anywhere`: on a machine with NVIDIA GPUs, in under 10 minutes,
#   bash benchmarks/gpu_check.sh            (after `make install`, or set HFKIT and PY)
# runs the generation demo recipe (SmolLM2-135M + LoRA, offline) on one GPU in bf16 and, when
# more than one GPU is visible, with accelerate_configs/multi_gpu.yaml (DDP) and fsdp.yaml (FSDP2)
# on all of them. Prints tokens/s and peak GPU memory of each run, read from its metrics.json.
set -euo pipefail
cd "$(dirname "$0")/.."
HFKIT=${HFKIT:-.venv/bin/hfkit}
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
out=runs/gpu_check
rm -rf "$out"
common=(training.bf16=true training.include_num_input_tokens_seen=non_padding training.max_steps=60
        training.per_device_train_batch_size=16 eval.baseline=false "output.dir=$out" output.timestamp=false)

gpus=$($PY -c 'import torch; print(torch.cuda.device_count())')
if [ "$gpus" -lt 1 ]; then echo "gpu_check: no GPU visible" >&2; exit 1; fi
$PY -c 'import torch; print("GPU:", torch.cuda.get_device_name(0), "x", torch.cuda.device_count())'

CUDA_VISIBLE_DEVICES=0 $HFKIT train recipes/generation/demo.yaml "${common[@]}" output.name=single_gpu
if [ "$gpus" -ge 2 ]; then
  for config in multi_gpu fsdp; do
    $HFKIT launch --config "accelerate_configs/$config.yaml" --num-processes "$gpus" \
      recipes/generation/demo.yaml "${common[@]}" "output.name=$config"
  done
fi

$PY - "$out" <<'PY'
import json, sys
from pathlib import Path

print("\n| run | processes | tokens/s | samples/s | peak GPU memory (MiB, rank 0) | exact match |")
print("|---|---|---|---|---|---|")
for run in sorted(Path(sys.argv[1]).iterdir()):
    metrics = json.loads((run / "metrics.json").read_text())
    env = json.loads((run / "env.json").read_text())
    train = metrics["train"]
    print(f"| {run.name} | {env['world_size']} | {train['tokens_per_second']} | {train['samples_per_second']} | "
          f"{metrics['peak_memory_mb'].get('cuda')} | {metrics['final'].get('exact_match')} |")
PY
