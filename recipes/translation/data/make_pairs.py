"""Writes the translation demo's data: short English sentences and their French translations.

Sentences come from a small grammar (subject, adjective, verb, place, time) with French gender
agreement and elision, so every translation is correct. Deterministic (fixed seed): running it
again reproduces the committed files byte for byte:
    python recipes/translation/data/make_pairs.py
Files use the WMT layout {"translation": {"en": ..., "fr": ...}}; validation sentences never
appear in the training file.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60

# english, french, gender
NOUNS = [("cat", "chat", "m"), ("dog", "chien", "m"), ("bird", "oiseau", "m"), ("horse", "cheval", "m"),
         ("boy", "garçon", "m"), ("girl", "fille", "f"), ("woman", "femme", "f"), ("man", "homme", "m"),
         ("cow", "vache", "f"), ("mouse", "souris", "f")]
# english, french masculine, french feminine, goes before the noun in French
ADJECTIVES = [("small", "petit", "petite", True), ("big", "grand", "grande", True), ("black", "noir", "noire", False),
              ("white", "blanc", "blanche", False), ("red", "rouge", "rouge", False), ("green", "vert", "verte", False),
              ("happy", "heureux", "heureuse", False)]
VERBS = [("sleeps", "dort"), ("eats", "mange"), ("runs", "court"), ("sings", "chante"), ("waits", "attend"),
         ("plays", "joue"), ("works", "travaille")]
PLACES = [("in the garden", "dans le jardin"), ("in the house", "dans la maison"),
          ("near the river", "près de la rivière"), ("in the kitchen", "dans la cuisine"),
          ("at school", "à l'école")]
TIMES = [("", ""), ("Today, ", "Aujourd'hui, "), ("Every morning, ", "Chaque matin, "), ("Tonight, ", "Ce soir, ")]


def with_article(phrase: str, gender: str) -> str:
    """le/la, elided to l' before a vowel or mute h."""
    if phrase[0] in "aeiouh":
        return "l'" + phrase
    return ("le " if gender == "m" else "la ") + phrase


def sentence(noun, adjective, verb, place, time) -> tuple[str, str]:
    en_noun, fr_noun, gender = noun
    en_adj, fr_masc, fr_fem, before = adjective
    article = "the" if time[0] else "The"
    english = f"{time[0]}{article} {en_adj} {en_noun} {verb[0]} {place[0]}."
    fr_adj = fr_masc if gender == "m" else fr_fem
    subject = with_article(f"{fr_adj} {fr_noun}" if before else f"{fr_noun} {fr_adj}", gender)
    if not time[1]:
        subject = subject[0].upper() + subject[1:]
    french = f"{time[1]}{subject} {verb[1]} {place[1]}."
    return english, french


def pairs(rng: random.Random, count: int, taken: set) -> list[dict]:
    rows = []
    while len(rows) < count:
        choice = (rng.choice(NOUNS), rng.choice(ADJECTIVES), rng.choice(VERBS), rng.choice(PLACES), rng.choice(TIMES))
        english, french = sentence(*choice)
        if english in taken:
            continue
        taken.add(english)
        rows.append({"translation": {"en": english, "fr": french}})
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    rng = random.Random(20261129)
    taken: set = set()
    validation = pairs(rng, VALIDATION_SIZE, taken)
    train = pairs(rng, TRAIN_SIZE, taken)
    write(HERE / "en_fr_train.jsonl", train)
    write(HERE / "en_fr_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation pairs to {HERE}")


if __name__ == "__main__":
    main()
