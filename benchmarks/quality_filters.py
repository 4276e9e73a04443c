"""What the quality filters (data.clean: repetition, symbols, language, word bounds) cost: rows/s of
each, and the cleaning of a split with all of them on over the cleaning without them.

20,000 prompt/completion rows of random English-like words (written here, seeded), cleaned by
hfkit.cleaning.clean_split in this process with the `datasets` cache off (so every run computes);
each setting is timed 3 times, interleaved, and the median kept.

    python benchmarks/quality_filters.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from common import report

WORDS = ("the a river town market old new small people children farmer bakery opens closes early late on in at "
         "with for every morning evening summer winter sells buys bread apples cheese honey and but when while").split()
SETTINGS = {
    "none": {},
    "words": {"min_words": 3, "max_words": 500, "mean_word_length": [2, 12]},
    "repetition": {"repetition": True},
    "symbols": {"symbols": True},
    "language": {"language": "en", "language_threshold": 0.0},
    "all": {"min_words": 3, "max_words": 500, "mean_word_length": [2, 12], "repetition": True, "symbols": True,
            "language": "en", "language_threshold": 0.0},
}


def rows(count: int) -> list[dict]:
    rng = random.Random(0)

    def text(low, high):
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))) + "."

    return [{"prompt": f"{i}: {text(5, 40)}", "completion": text(3, 30)} for i in range(count)]


def main() -> None:
    import datasets
    from datasets import Dataset

    from hfkit.cleaning import clean_split
    from hfkit.schema import CleanSection

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    datasets.disable_caching()
    datasets.disable_progress_bars()
    ds = Dataset.from_list(rows(args.rows))
    seconds: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(3):
        for name, options in SETTINGS.items():
            cfg = CleanSection(**options, dedup=False, decontaminate=False)
            started = time.perf_counter()
            clean_split(ds, ("prompt", "completion"), cfg, "train")
            seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    base = median["none"]
    per_filter = {name: round(args.rows / max(median[name] - base, 1e-9)) for name in SETTINGS if name != "none"}
    result = {"quality_filters_rows_per_s": per_filter["all"], "quality_filters_cost_ratio": round(median["all"] / base, 2),
              "rows": args.rows, "seconds": {k: round(v, 3) for k, v in median.items()}, "rows_per_s": per_filter}
    report(result, [(name, round(median[name], 2), per_filter.get(name, ""), round(median[name] / base, 2))
                    for name in SETTINGS],
           ("setting", "seconds (median of 3)", "filter rows/s (time over 'none')", "x cleaning without filters"))


if __name__ == "__main__":
    main()
