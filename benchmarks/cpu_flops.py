"""This machine's matmul FLOP/s in bf16 and fp32: the denominator of `cpu_mfu` in train_vs_trl.py.

A square `torch.matmul` (2048 x 2048 by default, 2·n³ FLOPs each) with torch's default threads,
after warm-up; the rate is 2·n³ / the median time of several single matmuls.

    python benchmarks/cpu_flops.py [--size 2048] [--repeats 9]
"""

from __future__ import annotations

import argparse
import statistics
import time


def matmul_flops(dtype: str, size: int = 2048, repeats: int = 9, warmup: int = 3) -> float:
    """FLOP/s of one `size`² matmul in `dtype` ("bfloat16" or "float32"): 2·size³ / median seconds."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(getattr(torch, dtype))
    b = torch.randn(size, size, generator=generator).to(getattr(torch, dtype))
    out = torch.empty(size, size, dtype=a.dtype)
    for _ in range(warmup):
        torch.matmul(a, b, out=out)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b, out=out)
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times)


def shape_seconds(m: int, k: int, n: int, dtype: str = "bfloat16", repeats: int = 20, warmup: int = 3) -> float:
    """Median seconds of one (m x k) @ (k x n) matmul in `dtype`."""
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(getattr(torch, dtype))
    b = torch.randn(k, n, generator=generator).to(getattr(torch, dtype))
    for _ in range(warmup):
        torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def step_shapes_flops(shapes: list[tuple[int, int, int, int]], dtype: str = "bfloat16") -> float:
    """The rate a training step's own matmuls reach: `shapes` holds (count, m, k, n) for each shape
    the step multiplies; FLOP/s = sum(count * 2mkn) / sum(count * median seconds of that shape)."""
    flops = sum(count * 2 * m * k * n for count, m, k, n in shapes)
    return flops / sum(count * shape_seconds(m, k, n, dtype) for count, m, k, n in shapes)


def measure(size: int = 2048, repeats: int = 9) -> dict:
    import torch

    return {"matmul_size": size, "threads": torch.get_num_threads(),
            "bf16_matmul_flops": matmul_flops("bfloat16", size, repeats),
            "fp32_matmul_flops": matmul_flops("float32", size, repeats)}


def main() -> dict:
    from common import report

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    m = measure(args.size, args.repeats)
    result = {"benchmark": "cpu_flops", "matmul_size": m["matmul_size"], "threads": m["threads"],
              "cpu_bf16_matmul_gflops": round(m["bf16_matmul_flops"] / 1e9, 1),
              "cpu_fp32_matmul_gflops": round(m["fp32_matmul_flops"] / 1e9, 1)}
    report(result, [("bfloat16", result["cpu_bf16_matmul_gflops"]), ("float32", result["cpu_fp32_matmul_gflops"])],
           ("dtype", f"GFLOP/s ({args.size}² matmul, {m['threads']} threads)"))
    return result


if __name__ == "__main__":
    main()
