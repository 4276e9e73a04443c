"""Writes the summarization demo's data: short local-news briefs and one-sentence summaries.

Each brief reports one decision taken this week (who, where, what, which weekday, the vote), among
neutral sentences and distractors that mention other bodies, towns and decisions (taken last year
or in some month, or postponed, or still to be discussed), in random order. The summary states
this week's decision in a fixed shape: "<Town>'s <body> approved|rejected <item> on <weekday>."

What validation tests: finding and restating the decision, not recall or a template match.
- Validation decisions are taken by bodies, in towns and about items that never appear in the
  training file, so no validation summary (nor any of its town, body or item) is a training one.
- Validation decisions are worded with sentence structures that never appear in training (the
  training structures' regexes match none of them), so the summary has to come from what the
  sentence says, not from where its words sit.
- Every brief has one or two distractor decisions by other bodies, in the same words (approved,
  rejected, a plan to ...), and in validation these mention training towns, bodies and items too,
  so a model that echoes what it saw in training, or the first decision it reads, is wrong.
Copying the summary of the nearest training brief scores ROUGE-L 0.39, little more than the 0.35
a random training summary gets from the shared shape alone (0.64 on the previous data, where three
regexes reproduced all 60 summaries); tests/test_demo_data.py measures it.

Deterministic (fixed seed): running it again reproduces the committed files byte for byte:
    python recipes/summarization/data/make_briefs.py
Files use the xsum layout {"document": ..., "summary": ...}.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60

# Each list: (training values, held-out validation values).
CITIES = (["Springfield", "Riverton", "Lakeside", "Millbrook", "Oakdale", "Fairview", "Greenville", "Hillcrest",
           "Maplewood", "Stonebridge"],
          ["Brookhaven", "Westport", "Ashford", "Pinecrest", "Cedar Grove", "Elmwood"])
BODIES = (["city council", "school board", "transport authority", "library board", "parks commission"],
          ["water board", "housing committee", "planning commission"])
ITEMS = (["a new budget of {n} million dollars", "a plan to build a park", "a new bus line",
          "a plan to renovate the library", "a ban on cars downtown", "a raise for teachers",
          "a new bike lane", "a plan to close the old pool", "a new parking garage", "a plan to sell the old mill"],
         ["a tax on plastic bags", "a new fire station", "a curfew for teenagers", "a plan to repave Main Street",
          "a free shuttle to the hospital", "a ban on leaf blowers"])
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "March", "April", "June", "September", "November"]
# This week's decision, worded the training way (part 0) or the held-out way (part 1).
DECISIONS = (
    ["On {day}, the {body} of {city} voted {yes} to {no} to {verb} {item}.",
     "The {city} {body} {verbed} {item} in a {yes}-{no} vote on {day}.",
     "Members of the {body} in {city} {verbed} {item} on {day}, by a vote of {yes} to {no}.",
     "{Item} was {verbed} by the {body} of {city} on {day} in a {yes}-{no} vote."],
    ["In a {yes}-{no} vote on {day}, {city}'s {body} {verbed} {item}.",
     "By a vote of {yes} to {no}, the {body} in {city} decided on {day} to {verb} {item}.",
     "{Item} was {verbed} on {day}, when the {city} {body} voted {yes} to {no}."],
)
# Other decisions: not this week's, or not taken.
DISTRACTORS = [
    "Last year, the {body} of {city} {verbed} {item}.",
    "In {month}, {city}'s {body} {verbed} {item}.",
    "The {body} of {city} will discuss {item} next month.",
    "A vote on {item} by the {city} {body} was postponed until {month}.",
    "Neighbouring {city} {verbed} {item} in {month}.",
]
FILLER = [
    "The meeting lasted three hours.",
    "Several residents spoke during the public comment period.",
    "The room was full, and some people had to stand.",
    "Local reporters asked about the timeline.",
    "The next meeting is scheduled for early spring.",
    "Officials thanked volunteers for their work on the annual fair.",
    "Coffee and cookies were served before the session.",
]


def verbs(approved: bool) -> tuple[str, str]:
    return ("approve", "approved") if approved else ("reject", "rejected")


def distractor(rng: random.Random, part: int, decision: tuple) -> str:
    """Another body's decision; in validation (part 1) from either half, never the brief's own town, body or item."""
    pools = [(CITIES[0] + CITIES[1]) if part else CITIES[0], (BODIES[0] + BODIES[1]) if part else BODIES[0],
             (ITEMS[0] + ITEMS[1]) if part else ITEMS[0]]
    city, body, what = (rng.choice([value for value in pool if value not in decision]) for pool in pools)
    return rng.choice(DISTRACTORS).format(body=body, city=city, item=what.format(n=rng.randint(2, 40)),
                                          verbed=verbs(rng.random() < 0.5)[1], month=rng.choice(MONTHS))


def brief(rng: random.Random, part: int) -> tuple[dict, tuple]:
    """part 0: training towns, bodies, items and wordings; 1: the held-out ones."""
    city, body, day = rng.choice(CITIES[part]), rng.choice(BODIES[part]), rng.choice(DAYS)
    raw = rng.choice(ITEMS[part])
    what = raw.format(n=rng.randint(2, 40))
    approved = rng.random() < 0.6
    high, low = sorted(rng.sample(range(1, 10), 2), reverse=True)
    yes, no = (high, low) if approved else (low, high)
    verb, verbed = verbs(approved)
    fact = rng.choice(DECISIONS[part]).format(day=day, body=body, city=city, yes=yes, no=no, verb=verb,
                                              verbed=verbed, item=what, Item=what[0].upper() + what[1:])
    sentences = rng.sample(FILLER, rng.randint(1, 3))
    sentences += [distractor(rng, part, (city, body, raw)) for _ in range(rng.randint(1, 2))]
    rng.shuffle(sentences)
    sentences.insert(rng.randint(0, len(sentences)), fact)
    summary = f"{city}'s {body} {verbed} {what} on {day}."
    return {"document": " ".join(sentences), "summary": summary}, (city, body, day, what, approved)


def briefs(rng: random.Random, count: int, taken: set, part: int) -> list[dict]:
    rows = []
    while len(rows) < count:
        row, key = brief(rng, part)
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
    validation = briefs(rng, VALIDATION_SIZE, taken, part=1)
    train = briefs(rng, TRAIN_SIZE, taken, part=0)
    write(HERE / "briefs_train.jsonl", train)
    write(HERE / "briefs_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation briefs to {HERE}")


if __name__ == "__main__":
    main()
