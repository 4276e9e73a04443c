"""Writes the summarization demo's data: short local-news briefs and one-sentence summaries.

Each brief states one decision (who, where, what, when, the vote) among unrelated sentences, in
varying order and wording; the summary states the decision in a fixed shape. Deterministic
(fixed seed): running it again reproduces the committed files byte for byte:
    python recipes/summarization/data/make_briefs.py
Files use the xsum layout {"document": ..., "summary": ...}.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60

CITIES = ["Springfield", "Riverton", "Lakeside", "Millbrook", "Oakdale", "Fairview", "Greenville", "Hillcrest",
          "Maplewood", "Stonebridge"]
BODIES = ["city council", "school board", "transport authority", "library board", "parks commission"]
ITEMS = ["a new budget of {n} million dollars", "a plan to build a park", "a new bus line",
         "a plan to renovate the library", "a ban on cars downtown", "a raise for teachers",
         "a new bike lane", "a plan to close the old pool"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
FACTS = [
    "On {day}, the {body} of {city} voted {yes} to {no} to {verb} {item}.",
    "The {city} {body} {verbed} {item} in a {yes}-{no} vote on {day}.",
    "Members of the {body} in {city} {verbed} {item} on {day}, by a vote of {yes} to {no}.",
]
FILLER = [
    "The meeting lasted three hours.",
    "Several residents spoke during the public comment period.",
    "A decision on parking fees was postponed until next month.",
    "The room was full, and some people had to stand.",
    "Local reporters asked about the timeline.",
    "The next meeting is scheduled for early spring.",
    "Officials thanked volunteers for their work on the annual fair.",
    "Coffee and cookies were served before the session.",
]


def brief(rng: random.Random) -> tuple[dict, tuple]:
    city, body, day = rng.choice(CITIES), rng.choice(BODIES), rng.choice(DAYS)
    item = rng.choice(ITEMS).format(n=rng.randint(2, 40))
    approved = rng.random() < 0.6
    high, low = sorted(rng.sample(range(1, 10), 2), reverse=True)
    yes, no = (high, low) if approved else (low, high)
    verb, verbed = ("approve", "approved") if approved else ("reject", "rejected")
    fact = rng.choice(FACTS).format(day=day, body=body, city=city, yes=yes, no=no, verb=verb, verbed=verbed, item=item)
    sentences = rng.sample(FILLER, rng.randint(2, 4))
    sentences.insert(rng.randint(0, len(sentences)), fact)
    summary = f"{city}'s {body} {verbed} {item} on {day}."
    return {"document": " ".join(sentences), "summary": summary}, (city, body, day, item, approved)


def briefs(rng: random.Random, count: int, taken: set) -> list[dict]:
    rows = []
    while len(rows) < count:
        row, key = brief(rng)
        if key in taken:
            continue
        taken.add(key)
        rows.append(row)
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(20261130)
    taken: set = set()
    validation = briefs(rng, VALIDATION_SIZE, taken)
    train = briefs(rng, TRAIN_SIZE, taken)
    write(HERE / "briefs_train.jsonl", train)
    write(HERE / "briefs_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation briefs to {HERE}")


if __name__ == "__main__":
    main()
