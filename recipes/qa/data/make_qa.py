"""Writes the QA demos' data: short biographies and questions whose answers are spans of them.

Each context describes one person (birthplace, birth year, job, employer, instrument, sibling,
pet) in shuffled order, next to a sentence about someone else, so answering means reading
the right sentence about the right person.

What validation tests: reading, not recall. Every list the answers come from (first and last
names, cities, years, jobs, employers, instruments, pet names) is split in two: training people
are built from the training half only, validation people from the held-out half. So no
validation answer appears anywhere in the training file (nor does any validation person, city,
job...), and guessing a familiar answer is always wrong. The distractor sentence about someone
else in a validation context uses training values, so a model that answers from memory picks the
distractor; two cities (birthplace, sibling's home) in each context make it read the right one.
Answering the training answer of the nearest training question scores EM 0 (it scored 15 on the
previous data, where 54 of 60 validation answers were also training answers).

Deterministic (fixed seed): running it again reproduces the committed files byte for byte:
    python recipes/qa/data/make_qa.py
Files use the flat SQuAD layout {id, title, context, question, answers: {text, answer_start}}.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60

# Each list: (training values, held-out validation values).
FIRST = {"she": (["Anna", "Maria", "Clara", "Sofia", "Elena", "Lena", "Julia", "Nora", "Ida", "Rosa"],
                 ["Greta", "Mira", "Alma", "Vera", "Lucia", "Petra"]),
         "he": (["Tom", "Lukas", "Marco", "Daniel", "Felix", "Hugo", "Oscar", "Paul", "Leon", "Ivan"],
                ["Emil", "Anton", "Victor", "Jonas", "Milan", "Rafael"])}
LAST = (["Keller", "Moreau", "Silva", "Novak", "Berg", "Costa", "Fischer", "Lind", "Romano", "Weber", "Horvat", "Dahl"],
        ["Jansen", "Ferreira", "Kowalski", "Lambert", "Nilsson", "Varga"])
CITIES = (["Lisbon", "Vienna", "Oslo", "Porto", "Lyon", "Krakow", "Ghent", "Turin", "Bergen", "Tampere", "Graz", "Malmo"],
          ["Seville", "Zagreb", "Dublin", "Riga", "Utrecht", "Bologna", "Gdansk", "Aarhus"])
YEARS = ([str(year) for year in range(1950, 2006) if year % 7 != 3],
         [str(year) for year in range(1950, 2006) if year % 7 == 3])
JOBS = (["chemist", "pilot", "carpenter", "nurse", "architect", "baker", "librarian", "geologist", "translator", "dentist"],
        ["plumber", "journalist", "electrician", "surgeon", "gardener", "optician"])
EMPLOYERS = (["the Riverside Hospital", "a small bakery", "the city library", "an airline", "a design studio",
              "the national museum", "a shipyard", "the university"],
             ["the central station", "a flower shop", "the town hall", "a newspaper", "the botanical garden"])
INSTRUMENTS = (["violin", "cello", "piano", "trumpet", "flute", "drums", "guitar", "harp"],
               ["saxophone", "clarinet", "accordion", "banjo", "trombone"])
PET_NAMES = (["Biscuit", "Pepper", "Luna", "Otto", "Mochi", "Ziggy", "Bruno", "Kiwi"],
             ["Noodle", "Waffle", "Pixel", "Sheriff", "Clover", "Tango"])
PETS = ["cat", "dog", "parrot", "rabbit", "turtle"]


def person(rng: random.Random, part: int) -> dict:
    """part 0: values from the training halves; 1: from the held-out halves."""
    pronoun = rng.choice(["she", "he"])
    sibling_pronoun = rng.choice(["she", "he"])
    city, sibling_city = rng.sample(CITIES[part], 2)
    return {
        "pronoun": pronoun, "first": rng.choice(FIRST[pronoun][part]), "last": rng.choice(LAST[part]),
        "city": city, "year": rng.choice(YEARS[part]), "job": rng.choice(JOBS[part]),
        "employer": rng.choice(EMPLOYERS[part]), "instrument": rng.choice(INSTRUMENTS[part]),
        "sibling": rng.choice(FIRST[sibling_pronoun][part]),
        "sibling_kind": "sister" if sibling_pronoun == "she" else "brother",
        "sibling_city": sibling_city, "pet": rng.choice(PETS), "pet_name": rng.choice(PET_NAMES[part]),
    }


def facts(p: dict, other: dict) -> dict[str, str]:
    """The context's sentences, by what they tell."""
    full, possessive = f"{p['first']} {p['last']}", "Her" if p["pronoun"] == "she" else "His"
    article = "an" if p["job"][0] in "aeiou" else "a"
    other_article = "an" if other["job"][0] in "aeiou" else "a"
    return {
        "birth": f"{full} was born in {p['city']} in {p['year']}.",
        "job": f"{p['first']} works as {article} {p['job']} at {p['employer']}.",
        "instrument": f"{p['pronoun'].capitalize()} plays the {p['instrument']} on weekends.",
        "sibling": f"{possessive} {p['sibling_kind']}, {p['sibling']}, lives in {p['sibling_city']}.",
        "pet": f"{p['first']} has a {p['pet']} named {p['pet_name']}.",
        "other": f"{other['first']} {other['last']}, {other_article} {other['job']}, was born in {other['city']} "
                 f"in {other['year']}.",
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


def examples(rng: random.Random, count: int, taken: set, prefix: str, part: int) -> list[dict]:
    """Three questions per person; people (part 0 or 1) never repeat; the other person is from part 0."""
    rows = []
    while len(rows) < count:
        p, other = person(rng, part), person(rng, 0)
        if (p["first"], p["last"]) in taken or p["first"] in (other["first"], p["sibling"]):
            continue
        taken.add((p["first"], p["last"]))
        sentences = facts(p, other)
        order = list(sentences)
        rng.shuffle(order)
        context = " ".join(sentences[key] for key in order)
        for question, answer, fact in rng.sample(questions(p), 3):
            start = context.index(sentences[fact]) + sentences[fact].index(answer)
            assert context[start:start + len(answer)] == answer
            rows.append({"id": f"{prefix}-{len(rows)}", "title": f"{p['first']} {p['last']}", "context": context,
                         "question": question, "answers": {"text": [answer], "answer_start": [start]}})
    return rows[:count]


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(20261201)
    taken: set = set()
    validation = examples(rng, VALIDATION_SIZE, taken, "val", part=1)
    train = examples(rng, TRAIN_SIZE, taken, "train", part=0)
    train_answers = {text for row in train for text in row["answers"]["text"]}
    assert not any(text in train_answers for row in validation for text in row["answers"]["text"])
    write(HERE / "people_train.jsonl", train)
    write(HERE / "people_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation questions to {HERE}")


if __name__ == "__main__":
    main()
