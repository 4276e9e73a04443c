"""Where one LoRA training step spends its time: `torch.profiler` over hfkit's own Trainer.

The setting is train_vs_trl.py's (the real SmolLM2-135M-Instruct, its synthetic en->"ro" pairs,
LoRA r=8 on q_proj and v_proj, dropout 0, batch 8, hfkit's defaults). `hfkit train` runs in this
process with a callback (nothing in hfkit changes) that lets `--warmup` steps pass, then profiles
`--steps` whole optimizer steps (data, forward, backward, optimizer) on the CPU.

Every profiled operator's *self* time goes to one group, so the groups add up to the step:
- forward: the innermost model module the operator ran in (forward hooks open a named range per
  module): attention projections, attention core (rotary, SDPA, reshapes), MLP projections, MLP
  activation, norms, LoRA (adapters, their dropout and casts), LM head, embedding, rotary tables,
  residual adds, loss (the cross-entropy inside the model's forward: hfkit's fused one, or
  transformers'), masks and glue;
- backward: the group of the forward operator that made the autograd node (matched by
  `sequence_nr`), so the gradient of a norm counts as "norms";
- optimizer (`Optimizer.step`/`zero_grad`), data (the DataLoader's `__next__`: reading and collating),
  autograd's gradient accumulation, and the rest (Trainer bookkeeping, callbacks).
A group's FLOPs are those the profiler counts for its matmuls (`with_flops`; SDPA's from its
shapes: 4·b·h·s·s'·d forward, twice that backward), over its own time. The profiler costs a few
microseconds per operator, so small-operator groups read a little high: the unprofiled step time of
the same run is printed beside the profiled one.

    python benchmarks/step_profile.py [--steps 3] [--warmup 2] [--examples 128] [--max-tokens 500]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from common import OFFLINE, report, smollm2_folder

import train_vs_trl

# A module's group, from the last parts of its name (peft: ...q_proj.base_layer, ...q_proj.lora_A.default).
PROJECTIONS = {"q_proj": "attention projections", "k_proj": "attention projections",
               "v_proj": "attention projections", "o_proj": "attention projections",
               "gate_proj": "MLP projections", "up_proj": "MLP projections", "down_proj": "MLP projections"}
LORA_PARTS = ("lora_A", "lora_B", "lora_dropout", "lora_magnitude_vector")
LOSS_OPS = ("aten::cross_entropy_loss", "aten::nll_loss_nd", "aten::log_softmax")
SDPA_FORWARD = "aten::_scaled_dot_product_flash_attention_for_cpu"
STEP = "hfkit_profiled_step"
ORDER = ["attention projections", "MLP projections", "LM head", "LoRA", "attention core (rotary, SDPA, reshapes)",
         "MLP activation (SiLU, multiply)", "norms", "residual adds", "embedding", "rotary tables", "loss",
         "masks and glue", "autograd: gradient accumulation", "optimizer", "data (read, collate)",
         "Trainer and other"]


def module_group(name: str) -> str | None:
    parts = name.split(".")
    if any(part in LORA_PARTS for part in parts):
        return "LoRA"
    last = parts[-1]
    if last == "base_layer":
        last = parts[-2]
    elif last in PROJECTIONS and name.startswith("base_model."):  # peft's wrapper: casts, scaling, the add
        return "LoRA" if _is_lora_wrapper(name) else PROJECTIONS[last]
    if last in PROJECTIONS:
        return PROJECTIONS[last]
    if last == "self_attn":
        return "attention core (rotary, SDPA, reshapes)"
    if last == "mlp":
        return "MLP activation (SiLU, multiply)"
    if last.endswith("norm") or last.endswith("layernorm"):
        return "norms"
    if last == "rotary_emb":
        return "rotary tables"
    if last == "embed_tokens":
        return "embedding"
    if last == "lm_head":
        return "LM head"
    if last.isdigit() and parts[-2] == "layers":
        return "residual adds"
    return None


_wrapped: set[str] = set()


def _is_lora_wrapper(name: str) -> bool:
    return name in _wrapped


def install_hooks(model) -> None:
    """A profiler range named `hfkit::<group>` around every grouped module's forward."""
    import torch

    names = dict(model.named_modules())
    _wrapped.update(name for name in names if f"{name}.base_layer" in names)
    for name, module in names.items():
        group = module_group(name) or ("masks and glue" if module is model else None)
        if group is None:
            continue

        def enter(mod, args, group=group):
            handle = torch.autograd.profiler.record_function(f"hfkit::{group}")
            handle.__enter__()
            mod.__dict__.setdefault("_hfkit_ranges", []).append(handle)

        def leave(mod, args, output):
            mod.__dict__["_hfkit_ranges"].pop().__exit__(None, None, None)

        module.register_forward_pre_hook(enter)
        module.register_forward_hook(leave)


def sdpa_flops(event, backward: bool) -> int:
    shapes = event.input_shapes
    if not shapes or len(shapes) < 2 or len(shapes[0]) != 4:
        return 0
    (b, h, s, d), (_, _, s_k, _) = shapes[0], shapes[1]
    return (8 if backward else 4) * b * h * s * s_k * d


def attribute(events) -> tuple[dict, dict, float]:
    """({group: {forward_us, backward_us, flops}}, {operator: self µs}, µs of the profiled steps)."""
    by_seq: dict[int, str] = {}
    groups: dict[str, dict] = defaultdict(lambda: {"forward_us": 0.0, "backward_us": 0.0, "flops": 0})
    operators: dict[str, float] = defaultdict(float)

    def ancestors(event):
        while event is not None:
            yield event
            event = event.cpu_parent

    def forward_group(event) -> str | None:
        chain = list(ancestors(event))
        if any(e.name in LOSS_OPS for e in chain):
            return "loss"
        return next((e.name.removeprefix("hfkit::") for e in chain if e.name.startswith("hfkit::")), None)

    steps = [e for e in events if e.name == STEP]
    step_us = sum(e.time_range.elapsed_us() for e in steps)
    ordered = sorted(events, key=lambda e: e.time_range.start)
    for event in ordered:  # forward operators first in time: their sequence numbers name the backward's group
        if event.sequence_nr >= 0 and not event.name.startswith("autograd::") and event.fwd_thread == 0:
            group = forward_group(event)
            if group and event.sequence_nr not in by_seq:
                by_seq[event.sequence_nr] = group
    for event in ordered:
        if not any(e.name == STEP for e in ancestors(event)):
            continue
        chain = list(ancestors(event))
        backward = next((e for e in chain if e.name.startswith("autograd::engine::evaluate_function")), None)
        if backward is not None:
            if "AccumulateGrad" in backward.name:
                group, phase = "autograd: gradient accumulation", "backward_us"
            else:
                group, phase = by_seq.get(backward.sequence_nr, "Trainer and other"), "backward_us"
        elif any(e.name.startswith(("Optimizer.step#", "Optimizer.zero_grad#")) for e in chain):
            group, phase = "optimizer", "forward_us"
        elif any(e.name.startswith("enumerate(DataLoader)") for e in chain):
            group, phase = "data (read, collate)", "forward_us"
        else:
            group, phase = forward_group(event) or "Trainer and other", "forward_us"
        groups[group][phase] += event.self_cpu_time_total
        if not event.name.startswith("hfkit::") and event.name != STEP:
            operators[event.name] += event.self_cpu_time_total
        flops = event.flops or 0
        if event.name.startswith(SDPA_FORWARD):
            flops = sdpa_flops(event, backward=event.name.endswith("_backward"))
        if flops and not any(child.flops for child in event.cpu_children):  # count each matmul once
            groups[group]["flops"] += flops
    return dict(groups), dict(operators), step_us


class ProfileSteps:
    """Trainer callback: profile steps warmup+1 .. warmup+steps, time every step."""

    def __init__(self, warmup: int, steps: int, out: Path):
        self.warmup, self.steps, self.out = warmup, steps, out
        self.profiler, self.ends = None, {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        install_hooks(model)
        self.ends[0] = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """The clock of each profiled step runs from the end of the step before it to its own end, so
        it holds the whole iteration: reading the batch, forward, backward, optimizer."""
        import torch

        self.ends[state.global_step] = time.perf_counter()
        if self.profiler is not None:
            self.step_range.__exit__(None, None, None)
        if state.global_step == self.warmup:
            from torch.profiler import ProfilerActivity, profile

            self.profiler = profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True)
            self.profiler.start()
        elif state.global_step == self.warmup + self.steps:
            self.profiler.stop()
            self._write(self.profiler.events())
            self.profiler = None
            control.should_training_stop = True
            return
        if self.profiler is not None:
            self.step_range = torch.autograd.profiler.record_function(STEP)
            self.step_range.__enter__()

    def _write(self, events) -> None:
        groups, operators, step_us = attribute(events)
        unprofiled = [self.ends[s] - self.ends[s - 1] for s in range(2, self.warmup + 1)]
        profiled = [self.ends[s] - self.ends[s - 1] for s in range(self.warmup + 1, self.warmup + self.steps + 1)]
        self.out.write_text(json.dumps({"groups": groups, "operators": operators, "profiled_us": step_us,
                                        "unprofiled_step_s": statistics.median(unprofiled) if unprofiled else None,
                                        "profiled_step_s": statistics.median(profiled)}))


def profile_the_loss() -> None:
    """hfkit's training loss (hfkit/fused_loss.py) runs in the model's own forward, outside any
    module: a range of its own names its operators (its backward is the gradient it kept)."""
    import torch

    from hfkit import fused_loss

    loss = fused_loss.causal_lm_loss

    def profiled(*args, **kwargs):
        with torch.autograd.profiler.record_function("hfkit::loss"):
            return loss(*args, **kwargs)

    fused_loss.causal_lm_loss = profiled  # installed on the model when the Trainer's first loss is computed


def install(warmup: int, steps: int, out: Path) -> None:
    """Every Trainer built afterwards in this process gets the profiling callback."""
    from transformers import Trainer, TrainerCallback

    original_init = Trainer.__init__
    profile_the_loss()
    callback = type("ProfileStepsCallback", (ProfileSteps, TrainerCallback), {})(warmup, steps, out)

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(callback)

    Trainer.__init__ = __init__


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=2, help="unprofiled steps first (at least 2: one is timed)")
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=500)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra hfkit overrides (e.g. training.optim=adamw_torch_fused)")
    args = parser.parse_args()
    import os

    os.environ.update(OFFLINE)
    from transformers import AutoTokenizer

    from hfkit.cli import main as hfkit_main

    model = smollm2_folder()
    rows = train_vs_trl.synthetic_pairs(AutoTokenizer.from_pretrained(model), args.examples, args.max_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_vs_trl.write_data(folder, rows)
        recipe = train_vs_trl.write_recipe(folder, model, args.warmup + args.steps + 1, "profile")
        out = folder / "profile.json"
        install(args.warmup, args.steps, out)
        try:
            hfkit_main(["train", str(recipe), "--overwrite", "-q", *args.set])
        except SystemExit as done:
            if done.code not in (0, None):
                raise
        profile = json.loads(out.read_text())
    return summarize(profile, args)


def summarize(profile: dict, args) -> dict:
    total = profile["profiled_us"]
    groups = profile["groups"]
    rows, shares = [], {}
    for name in ORDER + sorted(set(groups) - set(ORDER)):
        if name not in groups:
            continue
        g = groups[name]
        us = g["forward_us"] + g["backward_us"]
        shares[name] = {"share": round(us / total, 4), "ms_per_step": round(us / 1e3 / args.steps, 1),
                        "backward_share_of_group": round(g["backward_us"] / us, 3) if us else 0.0,
                        "gflops_per_second": round(g["flops"] / us / 1e3, 1) if g["flops"] else None}
        rows.append((name, f"{100 * us / total:.1f}%", shares[name]["ms_per_step"],
                     f"{100 * shares[name]['backward_share_of_group']:.0f}%", shares[name]["gflops_per_second"] or ""))
    top = sorted(profile["operators"].items(), key=lambda kv: -kv[1])[:15]
    result = {"benchmark": "step_profile", "steps": args.steps, "warmup": args.warmup, "overrides": args.set,
              "profiled_step_s": round(profile["profiled_step_s"], 3),
              "unprofiled_step_s": round(profile["unprofiled_step_s"], 3) if profile["unprofiled_step_s"] else None,
              "attributed_share": round(sum(v["share"] for v in shares.values()), 4),
              "groups": shares,
              "top_operators": {name: round(us / total, 4) for name, us in top}}
    report(result, rows, ("group", "share of step", "ms/step", "of which backward", "GFLOP/s"))
    print("\n| operator | share of step |\n|---|---|", file=sys.stdout)
    for name, us in top:
        print(f"| `{name}` | {100 * us / total:.1f}% |")
    return result


if __name__ == "__main__":
    main()
