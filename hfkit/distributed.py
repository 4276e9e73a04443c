"""Which process this is, and the shard-and-gather evaluation needs when there are several.

Under `accelerate launch` every process runs the whole of `hfkit train`; accelerate's
`PartialState` says which one is the main process (the only one that writes or prints).
"""

from __future__ import annotations

from typing import Any


def state():
    from accelerate import PartialState

    return PartialState()


def shut_down() -> None:
    """Destroy the process group before the interpreter exits. Left to the exit, gloo's threads once
    aborted a launched process after its work was done ('terminate called without an active
    exception', exit -6), failing a run that had written everything."""
    import sys

    if "torch.distributed" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launched_without_accelerator() -> bool:
    """Several processes started (WORLD_SIZE > 1) on a machine with no GPU or other accelerator."""
    import os

    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    accelerator = getattr(torch, "accelerator", None)  # torch >= 2.6
    return not (accelerator.is_available() if accelerator else torch.cuda.is_available())


def check_engine_on_cpu() -> None:
    """FSDP launched on a machine without an accelerator is refused: accelerate 1.15 makes a process
    group FSDP only for GPU-type devices (AcceleratorState), so on the CPU it would silently train
    as DDP (with use_cpu) or as unconnected single processes (without). torch's own FSDP2 runs on
    the CPU over gloo; accelerate does not take it there."""
    import os

    from hfkit.errors import HfkitError

    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and launched_without_accelerator():
        raise HfkitError("accelerate config: FSDP needs GPUs here (accelerate 1.15 applies FSDP only to GPU-type "
                         "process groups; on the CPU it would train as plain DDP); use accelerate_configs/multi_cpu.yaml")


def is_main() -> bool:
    return state().is_main_process


def world_size() -> int:
    return state().num_processes


def shard(items: list) -> list[int]:
    """The indices of `items` this process handles: every n-th, so shards have similar lengths."""
    current = state()
    return list(range(current.process_index, len(items), current.num_processes))


def gather(values: list) -> list:
    """Every process's list, concatenated in rank order, on every process."""
    if world_size() == 1:
        return values
    from accelerate.utils import gather_object

    return gather_object(values)


def broadcast(value: Any) -> Any:
    """The main process's `value`, on every process."""
    if world_size() == 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box)
    return box[0]


def sum_over_processes(value: float) -> float:
    """The sum of `value` over all processes (float64, so the result does not depend on the split)."""
    if world_size() == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=state().device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item())


def max_over_processes(value: int) -> int:
    """The largest `value` any process holds (to run the same number of collective steps)."""
    if world_size() == 1:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([value], device=state().device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def describe(trainer) -> dict[str, Any]:
    """World size, distributed type and the device of every process, for env.json."""
    current = state()
    return {
        "world_size": current.num_processes,
        "distributed_type": str(current.distributed_type.value if hasattr(current.distributed_type, "value")
                                else current.distributed_type),
        "backend": current.backend,
        "devices": gather([f"rank {current.process_index}: {trainer.args.device}"]),
    }


def shards_parameters(trainer) -> bool:
    """Are parameters sharded across processes (ZeRO-3, FSDP)? Then every process must take part in
    every forward pass, so generation runs with synced_gpus=True."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None) if trainer.is_deepspeed_enabled else None
    return bool(plugin and plugin.zero_stage == 3)


def check_launch_config(path) -> None:
    """The --config file must be an accelerate config (a YAML or JSON mapping): accelerate itself
    answers an empty file with a traceback."""
    import yaml

    from hfkit.errors import HfkitError

    if not path.is_file():
        raise HfkitError(f"--config: no such accelerate config: {path} (see accelerate_configs/)")
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise HfkitError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(settings, dict) or not settings:
        raise HfkitError(f"--config {path}: {'empty' if settings is None else 'not a mapping of settings'}; give an "
                         "accelerate config (see accelerate_configs/, or write one with accelerate config "
                         f"--config_file {path})")
