"""Writes the generation demo's data: dates in everyday English -> ISO 8601 (YYYY-MM-DD).

Deterministic (fixed seed), so running it again reproduces the committed files byte for byte:
    python recipes/generation/data/make_dates.py
Validation dates never appear in the training file.
"""

import calendar
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60
PROMPT = "Write this date as YYYY-MM-DD: {date}"


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def spell(year: int, month: int, day: int, style: int) -> str:
    name = calendar.month_name[month]
    return [
        f"{name} {day}, {year}",
        f"{day} {name} {year}",
        f"{calendar.month_abbr[month]} {day}, {year}",
        f"the {ordinal(day)} of {name}, {year}",
    ][style]


def examples(rng: random.Random, count: int, taken: set) -> list[dict]:
    rows = []
    while len(rows) < count:
        year, month = rng.randint(1900, 2099), rng.randint(1, 12)
        day = rng.randint(1, calendar.monthrange(year, month)[1])
        if (year, month, day) in taken:
            continue
        taken.add((year, month, day))
        date = spell(year, month, day, rng.randrange(4))
        rows.append({"input": PROMPT.format(date=date), "output": f"{year:04d}-{month:02d}-{day:02d}"})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(20261128)
    taken: set = set()
    validation = examples(rng, VALIDATION_SIZE, taken)
    train = examples(rng, TRAIN_SIZE, taken)
    write(HERE / "dates_train.jsonl", train)
    write(HERE / "dates_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation examples to {HERE}")


if __name__ == "__main__":
    main()
