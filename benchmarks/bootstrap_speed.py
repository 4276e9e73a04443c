"""Bootstrap intervals and paired tests (hfkit.metrics.bootstrap) vs one run of the metric itself.

For 1,000 and 10,000 synthetic sentence pairs, times the corpus metric (the `evaluate` module's
compute, module already loaded), `confidence_intervals` with 1,000 resamples and `paired_bootstrap`
of two systems with 1,000 resamples, end to end (sentence statistics or per-example scores
included), and the resampling alone. For BLEU and chrF at 1,000 pairs it also times sacrebleu's own paired_bs (PairedTest)
on the same two systems. Prints a JSON line and a markdown table; the key
`bootstrap_vs_metric_seconds` is the largest confidence_intervals / metric ratio measured.

    python benchmarks/bootstrap_speed.py [--sizes 1000 10000] [--resamples 1000] [--metrics ...]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from common import report, timed  # noqa: E402

from hfkit import metrics  # noqa: E402
import numpy as np  # noqa: E402

from hfkit.metrics.bootstrap import confidence_intervals, paired_bootstrap, resampled_sums  # noqa: E402

VOCABULARY = [f"word{i}" for i in range(3000)] + ["the", "a", "of", "and", "to", "in", "is", ",", "."]
WEIGHTS = [1 / (rank + 1) for rank in range(len(VOCABULARY))]  # Zipf-like, as real text


def sentences(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(5, 40))) for _ in range(count)]


def system(references: list[str], rate: float, seed: int) -> list[str]:
    """A 'translation': each word kept, replaced or dropped."""
    rng = random.Random(seed)
    out = []
    for reference in references:
        words = [w if rng.random() > rate else rng.choice(VOCABULARY) for w in reference.split()]
        out.append(" ".join(w for w in words if rng.random() > rate / 4) or "empty")
    return out


def sacrebleu_paired_bs(name: str, a: list[str], b: list[str], references: list[str], resamples: int) -> float:
    import sacrebleu
    from sacrebleu.significance import PairedTest

    metric = {"sacrebleu": sacrebleu.BLEU, "chrf": sacrebleu.CHRF}[name]()
    seconds, _ = timed(lambda: PairedTest([("a", a), ("b", b)], {"m": metric}, [references], test_type="bs",
                                          n_samples=resamples)())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--metrics", nargs="+", default=["sacrebleu", "chrf", "ter", "rouge", "exact_match"])
    args = parser.parse_args()

    result: dict = {"resamples": args.resamples}
    rows = []
    for size in args.sizes:
        references = sentences(size, seed=size)
        a, b = system(references, 0.3, seed=1), system(references, 0.25, seed=2)
        # the resampling alone (index draws, counts, one product with 10 statistics columns), best of 3
        resample_s = min(timed(lambda: resampled_sums(np.ones((size, 10)), args.resamples, seed=1))[0]
                         for _ in range(3))
        per_size = {"resample_only_s": round(resample_s, 3)}
        for name in args.metrics:
            module = metrics.load(name)
            metric_s, _ = timed(lambda: module.compute(predictions=a, references=references))
            bootstrap_s, _ = timed(lambda: confidence_intervals(name, a, references, n=args.resamples))
            paired_s, paired = timed(lambda: paired_bootstrap(name, a, b, references, n=args.resamples))
            entry = {"metric_s": round(metric_s, 3), "bootstrap_s": round(bootstrap_s, 3),
                     "paired_s": round(paired_s, 3), "ratio": round(bootstrap_s / metric_s, 2),
                     "paired_ratio": round(paired_s / metric_s, 2)}
            if name in ("sacrebleu", "chrf") and size <= 1000:
                entry["sacrebleu_paired_bs_s"] = round(sacrebleu_paired_bs(name, a, b, references, args.resamples), 3)
            per_size[name] = entry
            first = next(iter(paired.values()))
            rows.append((size, name, entry["metric_s"], entry["bootstrap_s"], entry["ratio"], entry["paired_s"],
                         entry.get("sacrebleu_paired_bs_s", ""), f"{first['p_value']:.3f}"))
            print(f"{size} {name}: {entry}", file=sys.stderr, flush=True)
        result[f"pairs_{size}"] = per_size
    result["bootstrap_vs_metric_seconds"] = max(e["ratio"] for key, v in result.items() if key.startswith("pairs_")
                                                for e in v.values() if isinstance(e, dict))
    report(result, rows, ("pairs", "metric", "metric s", f"CI ({args.resamples}) s", "CI / metric",
                          "paired s", "sacrebleu paired_bs s", "p (b vs a)"))


if __name__ == "__main__":
    main()
