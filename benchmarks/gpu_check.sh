#!/usr/bin/env bash
# GPU check for `launch anywhere`: on a machine with NVIDIA GPUs, in under 10 minutes,
#   bash benchmarks/gpu_check.sh            (after `make install`, or set HFKIT and PY)
# runs the generation demo recipe (SmolLM2-135M + LoRA, offline) on one GPU in bf16 and, when
# more than one GPU is visible, with accelerate_configs/multi_gpu.yaml (DDP) and fsdp.yaml (FSDP2)
# on all of them; then, on one GPU, QLoRA (peft.method: qlora, bitsandbytes' CUDA path) and the
# memory plan at a tight budget (resources.memory_gb: 1, batch 64; a run the plan refuses is listed
# with its error).
# Prints tokens/s, peak GPU memory and the plan's choice of each run, read from its metrics.json.
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
CUDA_VISIBLE_DEVICES=0 $HFKIT train recipes/generation/demo.yaml "${common[@]}" peft.method=qlora output.name=qlora
CUDA_VISIBLE_DEVICES=0 $HFKIT train recipes/generation/demo.yaml "${common[@]}" training.per_device_train_batch_size=64 \
  resources.memory_gb=1 output.name=planned_1gb || true
if [ "$gpus" -ge 2 ]; then
  for config in multi_gpu fsdp; do
    $HFKIT launch --config "accelerate_configs/$config.yaml" --num-processes "$gpus" \
      recipes/generation/demo.yaml "${common[@]}" "output.name=$config"
  done
fi

$PY - "$out" <<'PY'
import json, sys
from pathlib import Path

print("\n| run | method | processes | tokens/s | samples/s | peak GPU memory (MiB, rank 0) | memory plan "
      "(choice: measured / training peak GiB) | exact match |")
print("|---|---|---|---|---|---|---|---|")
for run in sorted(Path(sys.argv[1]).iterdir()):
    metrics = json.loads((run / "metrics.json").read_text())
    if metrics["status"] != "complete":
        print(f"| {run.name} | {metrics['method']} | {metrics['status']}: {metrics.get('error')} |")
        continue
    env = json.loads((run / "env.json").read_text())
    train, plan = metrics["train"], metrics.get("memory_plan") or {}
    chosen = next((o for o in plan.get("options", []) if all(o.get(k) == v for k, v in plan.get("choice", {}).items())), {})
    shown = f"{chosen.get('setting')}: {chosen.get('measured_gb')} / {plan.get('training_peak_gb')}" if chosen else "-"
    print(f"| {run.name} | {metrics['method']} | {env['world_size']} | {train['tokens_per_second']} | "
          f"{train['samples_per_second']} | {metrics['peak_memory_mb'].get('cuda')} | {shown} | "
          f"{metrics['final']['metrics'].get('exact_match')} |")
PY
