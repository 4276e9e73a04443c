"""CPU attention of one example, forward + backward: sdpa on bf16 inputs vs the same cast to fp32.

SmolLM2-135M's attention shapes (9 query heads of 64, 3 key/value heads, causal), one example of
each length as hfkit's per-example sdpa runs a padding-free row (hfkit/varlen_attention.py), which
computes in fp32 on a CPU because of what this prints. Median of `--repeats` interleaved runs.

    python benchmarks/attention_dtype.py [--lengths 100,179,300,500] [--repeats 21]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from common import report


def step(query, key, value, grad, fp32: bool) -> None:
    q, k, v = (t.clone().requires_grad_() for t in (query, key, value))
    if fp32:
        q, k, v = q.float(), k.float(), v.float()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).to(torch.bfloat16)
    out.backward(grad)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="100,179,300,500")
    parser.add_argument("--repeats", type=int, default=21)
    args = parser.parse_args()
    torch.manual_seed(0)
    rows, measured = [], {}
    for length in (int(n) for n in args.lengths.split(",")):
        query = torch.randn(1, 9, length, 64, dtype=torch.bfloat16)
        key, value = (torch.randn(1, 3, length, 64, dtype=torch.bfloat16) for _ in range(2))
        grad = torch.randn(1, 9, length, 64, dtype=torch.bfloat16)
        seconds: dict[bool, list[float]] = {False: [], True: []}
        for fp32 in (False, True, False, True):  # warm-up
            step(query, key, value, grad, fp32)
        for _ in range(args.repeats):
            for fp32 in (False, True):
                started = time.perf_counter()
                step(query, key, value, grad, fp32)
                seconds[fp32].append(time.perf_counter() - started)
        bf16_ms, fp32_ms = (1000 * statistics.median(seconds[flag]) for flag in (False, True))
        measured[str(length)] = {"bf16_ms": round(bf16_ms, 2), "fp32_ms": round(fp32_ms, 2),
                                 "fp32_speedup": round(bf16_ms / fp32_ms, 2)}
        rows.append((length, round(bf16_ms, 2), round(fp32_ms, 2), round(bf16_ms / fp32_ms, 2)))
    result = {"benchmark": "attention_dtype", "threads": torch.get_num_threads(), "repeats": args.repeats,
              "lengths": measured}
    report(result, rows, ("tokens", "bf16 ms (fwd+bwd)", "fp32 ms", "bf16 / fp32"))
    return result


if __name__ == "__main__":
    main()
