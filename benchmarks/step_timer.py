"""Per-step clock and exact token counts inside any transformers `Trainer` (hfkit's, TRL's SFTTrainer).

`install()` patches the `transformers.Trainer` class in the current process (hfkit's code is not
touched): every `training_step` call records what the batch really holds, and a callback stamps
`time.perf_counter()` at the end of every optimizer step. At the end of training the log is written
as JSON to the file named by $BENCH_STEP_LOG.

Per batch it records, from the tensors actually fed to the model:
- `lengths`: the real (non-padding) length of every sequence in it. Padded batches: the row sums
  of `attention_mask`. Padding-free / packed batches (no attention_mask, one flattened row): the
  spans between sequence starts (`cu_seq_lens_q` when present, else where `position_ids` is 0).
- `targets`: positions whose next-token label is not -100 (`labels[..., 1:] != -100`), i.e. the
  positions the loss reads logits at.
"""

from __future__ import annotations

import json
import os
import time

_installed = False


def batch_stats(inputs: dict) -> dict:
    import torch

    ids = inputs["input_ids"]
    mask = inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        lengths = mask.sum(dim=1).tolist()
    elif inputs.get("cu_seq_lens_q") is not None:
        lengths = inputs["cu_seq_lens_q"].diff().tolist()
    elif inputs.get("position_ids") is not None:
        positions = inputs["position_ids"]
        lengths = []
        for row in positions:
            starts = (row == 0).nonzero().flatten().tolist() + [row.numel()]
            lengths += [b - a for a, b in zip(starts, starts[1:])]
    else:  # no padding information: every position is a token
        lengths = [ids.shape[-1]] * (ids.shape[0] if ids.dim() == 2 else 1)
    labels = inputs.get("labels")
    targets = int((labels[..., 1:] != -100).sum()) if isinstance(labels, torch.Tensor) else 0
    return {"lengths": [int(n) for n in lengths], "targets": targets, "shape": list(ids.shape)}


def install() -> None:
    """Patch transformers.Trainer so that every Trainer built afterwards logs its steps."""
    global _installed
    if _installed:
        return
    _installed = True
    from transformers import Trainer, TrainerCallback

    path = os.environ.get("BENCH_STEP_LOG")
    log: dict = {"batches": [], "step_end": {}, "train_begin": None}

    class StepClock(TrainerCallback):
        def __init__(self, trainer):
            self.trainer = trainer

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            frozen = next((p for p in model.parameters() if not p.requires_grad), None)
            trainable = next((p for p in model.parameters() if p.requires_grad), None)
            log.update(train_begin=time.perf_counter(), trainer=type(self.trainer).__name__,
                       frozen_dtype=str(frozen.dtype).removeprefix("torch.") if frozen is not None else None,
                       trainable_dtype=str(trainable.dtype).removeprefix("torch.") if trainable is not None else None,
                       bf16_autocast=bool(args.bf16), gradient_checkpointing=bool(args.gradient_checkpointing),
                       attention=getattr(model.config, "_attn_implementation", None))

        def on_step_end(self, args, state, control, **kwargs):
            log["step_end"][state.global_step] = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            log["train_end"] = time.perf_counter()
            if path:
                with open(path, "w") as f:
                    json.dump(log, f)

    original_init, original_step = Trainer.__init__, Trainer.training_step

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(StepClock(self))

    def training_step(self, model, inputs, *args, **kwargs):
        log["batches"].append({"step": self.state.global_step + 1, **batch_stats(inputs)})
        return original_step(self, model, inputs, *args, **kwargs)

    Trainer.__init__, Trainer.training_step = __init__, training_step


def window(log: dict, warmup: int, steps: int) -> dict:
    """Seconds and batches of steps warmup+1 .. warmup+steps: from the end of step `warmup` to the end
    of step `warmup + steps`, so it holds whole iterations (data loading, forward, backward, optimizer)."""
    ends = {int(k): v for k, v in log["step_end"].items()}
    last = warmup + steps
    if last not in ends:
        raise SystemExit(f"training stopped at step {max(ends, default=0)}, before step {last}")
    start = ends[warmup] if warmup else log["train_begin"]
    batches = [b for b in log["batches"] if warmup < b["step"] <= last]
    return {"seconds": ends[last] - start, "batches": batches,
            "tokens": sum(sum(b["lengths"]) for b in batches),
            "sequences": sum(len(b["lengths"]) for b in batches)}
