"""Measuring memory: this process's peak (RSS on a CPU, the caching allocator on a GPU), the peak of
one probe kept apart from it, and how much memory is available to the process.

A probe (hfkit.memory_plan runs one forward + backward on the longest batch) must not count as the
run's own peak, and ru_maxrss is a lifetime maximum that never forgets it. On Linux the kernel's
high-water mark (VmHWM) can be reset (`echo 5 > /proc/self/clear_refs`): before a probe the peak so
far is kept aside and the mark reset; after it the probe's peak is read and the mark reset again. So
`process_peak_mb` is the peak of everything but the probes (training's own peak is measured the same
way, and kept). Before each block, freed heap memory is handed back to the system (glibc's
malloc_trim), so the block's peak is what it adds to live memory. On a GPU, torch's allocator
statistics play the same part.
"""

from __future__ import annotations

import ctypes
import os
import resource
from contextlib import contextmanager
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")

_kept = {"rss": 0.0, "cuda": 0.0}  # the highest peaks outside probes, kept when the marks were reset


class Peak:
    """The peak of a `measured()` block (MiB; None when this system cannot reset its peak), and how
    far it rose above the memory in use when the block began."""

    mb: float | None = None
    start_mb: float | None = None

    @property
    def growth_mb(self) -> float | None:
        return None if self.mb is None else self.mb - self.start_mb


def _status_mb(key: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident memory of this process now, MiB."""
    return _status_mb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hwm_mb() -> float:
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_hwm() -> bool:
    """Keep the peak so far aside, then reset the kernel's high-water mark to the current RSS."""
    _kept["rss"] = max(_kept["rss"], _hwm_mb())
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def can_reset_peak() -> bool:
    """Can this process measure a probe's peak apart from its own (Linux clear_refs, or a GPU)?"""
    return gpu() or _reset_hwm()


def gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def trim() -> None:
    """Return freed heap memory to the system, so RSS is live memory (no gc.collect: tensors are
    freed by reference counting, and a full collection took over a second in a loaded job)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


def process_peak_mb() -> dict[str, float]:
    """Peak memory of this process, probes excepted: RSS, and the GPU allocator's when a GPU is used."""
    peak = {"rss": round(max(_kept["rss"], _hwm_mb()), 1)}
    if gpu():
        import torch

        peak["cuda"] = round(max(_kept["cuda"], torch.cuda.max_memory_allocated() / 2**20), 1)
    return peak


@contextmanager
def measured(forget: bool):
    """Measure the peak of the block: on a GPU the allocator's reserved memory, else the process's RSS.

    The peak before the block is kept for `process_peak_mb`; with `forget` (a probe) the block's own
    peak is not part of it."""
    probe = Peak()
    if gpu():
        import torch

        _kept["cuda"] = max(_kept["cuda"], torch.cuda.max_memory_allocated() / 2**20)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        probe.start_mb = torch.cuda.memory_reserved() / 2**20
        try:
            yield probe
        finally:
            probe.mb = torch.cuda.max_memory_reserved() / 2**20
            if forget:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
        return
    trim()
    resettable = _reset_hwm()
    probe.start_mb = rss_mb()
    try:
        yield probe
    finally:
        if resettable:
            probe.mb = _hwm_mb()
            if forget:
                trim()
                CLEAR_REFS.write_text("5")  # the peak before the block stays kept


def available_mb() -> tuple[float, str]:
    """Memory this process may still use, MiB, and where the number comes from.

    On a GPU: free device memory plus what this process's allocator holds. Else: the system's
    MemAvailable (or the cgroup's limit when that is lower) plus this process's own RSS; with several
    processes on the machine (LOCAL_WORLD_SIZE), each gets its share of what is free."""
    share = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if gpu():
        import torch

        free, _ = torch.cuda.mem_get_info()
        held = torch.cuda.memory_reserved()
        return (free + held) / 2**20, "free GPU memory"
    free = _meminfo_mb("MemAvailable")
    source = "free RAM"
    limit = _cgroup_free_mb()
    if limit is not None and limit < free:
        free, source = limit, "free memory under this cgroup's limit"
    if share > 1:
        source += f" shared by {share} processes"
    return free / share + rss_mb(), source


def _meminfo_mb(key: str) -> float:
    for line in MEMINFO.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(f"{MEMINFO} has no {key}")


def _cgroup_free_mb() -> float | None:
    """cgroup v2 memory.max - memory.current, when a limit is set."""
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        used = int((CGROUP / "memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else (int(limit) - used) / 2**20


def in_use_mb() -> float:
    """Memory this process uses now (MiB): its RSS, or on a GPU what torch's allocator holds."""
    if gpu():
        import torch

        return torch.cuda.memory_reserved() / 2**20
    return rss_mb()
