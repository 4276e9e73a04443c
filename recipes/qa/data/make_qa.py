"""Writes the QA demos' data: short biographies and questions whose answers are spans of them.

Each context describes one person (birthplace, birth year, job, employer, instrument, sibling,
pet) in shuffled order, next to a sentence about someone else, so answering means reading
the right sentence about the right person. Deterministic (fixed seed): running it again
reproduces the committed files byte for byte:
    python recipes/qa/data/make_qa.py
Files use the flat SQuAD layout {id, title, context, question, answers: {text, answer_start}};
validation people never appear in the training file.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60

FIRST = {"she": ["Anna", "Maria", "Clara", "Sofia", "Elena", "Lena", "Julia", "Nora", "Ida", "Rosa"],
         "he": ["Tom", "Lukas", "Marco", "Daniel", "Felix", "Hugo", "Oscar", "Paul", "Leon", "Ivan"]}
LAST = ["Keller", "Moreau", "Silva", "Novak", "Berg", "Costa", "Fischer", "Lind", "Romano", "Weber", "Horvat", "Dahl"]
CITIES = ["Lisbon", "Vienna", "Oslo", "Porto", "Lyon", "Krakow", "Ghent", "Turin", "Bergen", "Tampere", "Graz", "Malmo"]
JOBS = ["chemist", "pilot", "carpenter", "nurse", "architect", "baker", "librarian", "geologist", "translator", "dentist"]
EMPLOYERS = ["the Riverside Hospital", "a small bakery", "the city library", "an airline", "a design studio",
             "the national museum", "a shipyard", "the university"]
INSTRUMENTS = ["violin", "cello", "piano", "trumpet", "flute", "drums", "guitar", "harp"]
PETS = ["cat", "dog", "parrot", "rabbit", "turtle"]
PET_NAMES = ["Biscuit", "Pepper", "Luna", "Otto", "Mochi", "Ziggy", "Bruno", "Kiwi"]


def person(rng: random.Random) -> dict:
    pronoun = rng.choice(["she", "he"])
    sibling_pronoun = rng.choice(["she", "he"])
    return {
        "pronoun": pronoun, "first": rng.choice(FIRST[pronoun]), "last": rng.choice(LAST),
        "city": rng.choice(CITIES), "year": str(rng.randint(1950, 2005)), "job": rng.choice(JOBS),
        "employer": rng.choice(EMPLOYERS), "instrument": rng.choice(INSTRUMENTS),
        "sibling": rng.choice(FIRST[sibling_pronoun]), "sibling_kind": "sister" if sibling_pronoun == "she" else "brother",
        "sibling_city": rng.choice(CITIES), "pet": rng.choice(PETS), "pet_name": rng.choice(PET_NAMES),
    }


def facts(p: dict, other: dict) -> dict[str, str]:
    """The context's sentences, by what they tell."""
    full, possessive = f"{p['first']} {p['last']}", "Her" if p["pronoun"] == "she" else "His"
    article = "an" if p["job"][0] in "aeiou" else "a"
    return {
        "birth": f"{full} was born in {p['city']} in {p['year']}.",
        "job": f"{p['first']} works as {article} {p['job']} at {p['employer']}.",
        "instrument": f"{p['pronoun'].capitalize()} plays the {p['instrument']} on weekends.",
        "sibling": f"{possessive} {p['sibling_kind']}, {p['sibling']}, lives in {p['sibling_city']}.",
        "pet": f"{p['first']} has a {p['pet']} named {p['pet_name']}.",
        "other": f"{other['first']} {other['last']}, a {other['job']}, was born in {other['city']} in {other['year']}.",
    }


def questions(p: dict) -> list[tuple[str, str, str]]:
    """(question, answer, the fact that holds the answer)."""
    full = f"{p['first']} {p['last']}"
    return [
        (f"Where was {full} born?", p["city"], "birth"),
        (f"In what year was {full} born?", p["year"], "birth"),
        (f"What is {p['first']}'s job?", p["job"], "job"),
        (f"Where does {p['first']} work?", p["employer"], "job"),
        (f"What instrument does {p['first']} play?", p["instrument"], "instrument"),
        (f"Where does {p['first']}'s {p['sibling_kind']} live?", p["sibling_city"], "sibling"),
        (f"What is the name of {p['first']}'s {p['pet']}?", p["pet_name"], "pet"),
    ]


def examples(rng: random.Random, count: int, taken: set, prefix: str) -> list[dict]:
    rows = []
    while len(rows) < count:
        p, other = person(rng), person(rng)
        if (p["first"], p["last"]) in taken or other["first"] == p["first"]:
            continue
        taken.add((p["first"], p["last"]))
        sentences = facts(p, other)
        order = list(sentences)
        rng.shuffle(order)
        context = " ".join(sentences[key] for key in order)
        for question, answer, fact in rng.sample(questions(p), 3):
            start = context.index(sentences[fact]) + sentences[fact].index(answer)
            rows.append({"id": f"{prefix}-{len(rows)}", "title": f"{p['first']} {p['last']}", "context": context,
                         "question": question, "answers": {"text": [answer], "answer_start": [start]}})
    return rows[:count]


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(20261201)
    taken: set = set()
    validation = examples(rng, VALIDATION_SIZE, taken, "val")
    train = examples(rng, TRAIN_SIZE, taken, "train")
    write(HERE / "people_train.jsonl", train)
    write(HERE / "people_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation questions to {HERE}")


if __name__ == "__main__":
    main()
