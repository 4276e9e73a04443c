"""Writes the translation demo's data: short English sentences and their French translations.

Sentences come from a small grammar ([time,] the adjective noun [does not] verb preposition the
location) with French gender agreement, adjective position, elision (l', n') and contraction
(au, du), so every translation is grammatical (if not always sensible: "under the kitchen").

What validation tests: recombination, not recall. Every word of the grammar belongs to one of six
groups. A training sentence takes its time, adjective, noun, verb, preposition and location all
from ONE group; a validation sentence takes each of them from a DIFFERENT group. So every
validation word, and both sentence shapes, are in the training file, but no two content words of a
validation sentence ever appear together in a training sentence: the nearest training sentence
shares at most one of them. Copying the French of the nearest training sentence scores BLEU ~6
(it scored ~55 on the previous data; tests/test_demo_data.py measures it). A model has to
translate word by word, put the adjective on the right side of a noun it never saw it with, make
it agree in gender, and elide or contract le/la/de/à/ne in combinations it never saw.

Deterministic (fixed seed): running it again reproduces the committed files byte for byte:
    python recipes/translation/data/make_pairs.py
Files use the WMT layout {"translation": {"en": ..., "fr": ...}}.
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TRAIN_SIZE, VALIDATION_SIZE = 400, 60
GROUPS = 6

# One list per group. Nouns: english, french, gender.
NOUNS = [
    [("cat", "chat", "m"), ("bird", "oiseau", "m"), ("girl", "fille", "f"), ("cow", "vache", "f")],
    [("dog", "chien", "m"), ("horse", "cheval", "m"), ("woman", "femme", "f"), ("mouse", "souris", "f")],
    [("boy", "garçon", "m"), ("duck", "canard", "m"), ("goat", "chèvre", "f"), ("owl", "chouette", "f")],
    [("man", "homme", "m"), ("fox", "renard", "m"), ("bee", "abeille", "f"), ("frog", "grenouille", "f")],
    [("bear", "ours", "m"), ("wolf", "loup", "m"), ("hen", "poule", "f"), ("turtle", "tortue", "f")],
    [("pig", "cochon", "m"), ("donkey", "âne", "m"), ("goose", "oie", "f"), ("spider", "araignée", "f")],
]
# english, french masculine, french feminine, goes before the noun in French
ADJECTIVES = [
    [("small", "petit", "petite", True), ("black", "noir", "noire", False), ("happy", "heureux", "heureuse", False)],
    [("big", "grand", "grande", True), ("white", "blanc", "blanche", False), ("tired", "fatigué", "fatiguée", False)],
    [("young", "jeune", "jeune", True), ("red", "rouge", "rouge", False), ("grey", "gris", "grise", False)],
    [("pretty", "joli", "jolie", True), ("green", "vert", "verte", False), ("sad", "triste", "triste", False)],
    [("fat", "gros", "grosse", True), ("blue", "bleu", "bleue", False), ("calm", "calme", "calme", False)],
    [("good", "bon", "bonne", True), ("brown", "brun", "brune", False), ("curious", "curieux", "curieuse", False)],
]
# english third person, english base form, french
VERBS = [
    [("sleeps", "sleep", "dort"), ("eats", "eat", "mange"), ("listens", "listen", "écoute")],
    [("runs", "run", "court"), ("sings", "sing", "chante"), ("waits", "wait", "attend")],
    [("plays", "play", "joue"), ("works", "work", "travaille"), ("arrives", "arrive", "arrive")],
    [("reads", "read", "lit"), ("dances", "dance", "danse"), ("swims", "swim", "nage")],
    [("jumps", "jump", "saute"), ("walks", "walk", "marche"), ("laughs", "laugh", "rit")],
    [("cries", "cry", "pleure"), ("drinks", "drink", "boit"), ("writes", "write", "écrit")],
]
# english, french, and how the French preposition combines with le / la / l'
PREPOSITIONS = [("in", "dans"), ("near", "près de"), ("under", "sous"), ("behind", "derrière"), ("on", "sur"), ("at", "à")]
LOCATIONS = [
    [("garden", "jardin", "m"), ("house", "maison", "f"), ("school", "école", "f")],
    [("river", "rivière", "f"), ("bridge", "pont", "m"), ("market", "marché", "m")],
    [("kitchen", "cuisine", "f"), ("lake", "lac", "m"), ("table", "table", "f")],
    [("forest", "forêt", "f"), ("door", "porte", "f"), ("station", "gare", "f")],
    [("street", "rue", "f"), ("beach", "plage", "f"), ("park", "parc", "m")],
    [("church", "église", "f"), ("hospital", "hôpital", "m"), ("tree", "arbre", "m")],
]
TIMES = [
    [("Today", "Aujourd'hui"), ("Often", "Souvent")],
    [("Every morning", "Chaque matin"), ("Now", "Maintenant")],
    [("Tonight", "Ce soir"), ("Sometimes", "Parfois")],
    [("Every day", "Chaque jour"), ("In the evening", "Le soir")],
    [("On Sundays", "Le dimanche"), ("Usually", "D'habitude")],
    [("At noon", "À midi"), ("Every week", "Chaque semaine")],
]
SLOTS = 6  # time, adjective, noun, verb, preposition, location
NO_TIME_SHARE, NEGATED_SHARE = 0.3, 0.3
VOWELS = "aeiouhâéè"


def with_article(phrase: str, gender: str) -> str:
    """le/la, elided to l' before a vowel or mute h."""
    if phrase[0] in VOWELS:
        return "l'" + phrase
    return ("le " if gender == "m" else "la ") + phrase


def capitalize(text: str) -> str:
    return text[0].upper() + text[1:]


def place(preposition, location) -> tuple[str, str]:
    """'near the lake' -> 'près du lac': à/de + le contract to au/du."""
    noun_phrase = with_article(location[1], location[2])
    french = f"{preposition[1]} {noun_phrase}"
    for long, short in (("à le ", "au "), ("de le ", "du ")):
        french = french.replace(long, short)
    return f"{preposition[0]} the {location[0]}", french


def sentence(time, adjective, noun, verb, preposition, location, negated: bool) -> tuple[str, str]:
    en_noun, fr_noun, gender = noun
    en_adj, fr_masc, fr_fem, before = adjective
    en_place, fr_place = place(preposition, location)
    en_verb = f"does not {verb[1]}" if negated else verb[0]
    english = f"the {en_adj} {en_noun} {en_verb} {en_place}."
    fr_adj = fr_masc if gender == "m" else fr_fem
    subject = with_article(f"{fr_adj} {fr_noun}" if before else f"{fr_noun} {fr_adj}", gender)
    fr_verb = (("n'" if verb[2][0] in VOWELS else "ne ") + verb[2] + " pas") if negated else verb[2]
    french = f"{subject} {fr_verb} {fr_place}."
    if time:
        return f"{time[0]}, {english}", f"{time[1]}, {french}"
    return capitalize(english), capitalize(french)


def draw(rng: random.Random, groups: list[int]) -> tuple:
    """One sentence whose time, adjective, noun, verb, preposition and location come from groups[0..5]."""
    time = None if rng.random() < NO_TIME_SHARE else rng.choice(TIMES[groups[0]])
    return (time, rng.choice(ADJECTIVES[groups[1]]), rng.choice(NOUNS[groups[2]]), rng.choice(VERBS[groups[3]]),
            PREPOSITIONS[groups[4]], rng.choice(LOCATIONS[groups[5]]), rng.random() < NEGATED_SHARE)


def pairs(rng: random.Random, count: int, taken: set, mixed: bool) -> list[dict]:
    """mixed=False: every word from one group (training); True: each word from another group (validation)."""
    rows = []
    while len(rows) < count:
        groups = rng.sample(range(GROUPS), SLOTS) if mixed else [rng.randrange(GROUPS)] * SLOTS
        english, french = sentence(*draw(rng, groups))
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
    validation = pairs(rng, VALIDATION_SIZE, taken, mixed=True)
    train = pairs(rng, TRAIN_SIZE, taken, mixed=False)
    words = [{word for row in rows for word in row["translation"]["en"].lower().strip(".").replace(",", "").split()}
             for rows in (train, validation)]
    assert words[1] <= words[0], f"validation words missing from training: {sorted(words[1] - words[0])}"
    write(HERE / "en_fr_train.jsonl", train)
    write(HERE / "en_fr_validation.jsonl", validation)
    print(f"wrote {len(train)} training and {len(validation)} validation pairs to {HERE}")


if __name__ == "__main__":
    main()
