"""Quality filters for training text: the published Gopher rules (Rae et al. 2021, "Scaling Language
Models", appendix A, table A1) and a language identifier, as plain functions of one text.

Each rule returns the name of the limit a text breaks, or None when it passes; hfkit.cleaning runs
them over a split (batched, cached) and counts what each removed. The limits are the paper's (their
defaults live in hfkit.schema: RepetitionRules, SymbolRules), and the rules work as datatrove
(FineWeb's pipeline) implements them: `tests/test_quality.py` checks every rule against datatrove's
GopherRepetitionFilter and GopherQualityFilter on the same texts. Where hfkit differs, on purpose:
- words are whitespace-separated tokens (datatrove splits English with spaCy into words and
  punctuation marks; a word of only punctuation or symbols is found by Unicode category here);
- the "top n-gram" rule counts an n-gram only when it occurs more than once: datatrove counts the
  most common n-gram even when every n-gram is unique, which removes every text under ~10 words
  ("What is the capital of France?" fails its top 2-gram limit of 20% of the characters).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Any

from hfkit.errors import HfkitError

# Part of every filter's cache key: `datasets` keys a map on its function's name, not on the code it
# calls, so bump this when a rule below changes, or a re-run would reuse the old verdicts.
RULES_VERSION = 2

_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")


def repetition_problem(text: str, rules: dict[str, Any]) -> str | None:
    """The first Gopher repetition limit `text` breaks (e.g. "dup_line_frac"), or None."""
    if not text.strip():
        return None  # nothing repeats in an empty text (drop_empty is the rule for those)
    size = len(text)
    paragraphs = _PARAGRAPHS.split(text.strip())
    count, chars = _duplicates(paragraphs)
    if _above(count / len(paragraphs), rules.get("dup_para_frac")):
        return "dup_para_frac"
    if _above(chars / size, rules.get("dup_para_char_frac")):
        return "dup_para_char_frac"
    lines = _LINES.split(text)
    count, chars = _duplicates(lines)
    if _above(count / len(lines), rules.get("dup_line_frac")):
        return "dup_line_frac"
    if _above(chars / size, rules.get("dup_line_char_frac")):
        return "dup_line_char_frac"
    words = text.split()
    for n, limit in sorted((rules.get("top_ngram_char_frac") or {}).items()):
        if _above(_top_repeated_ngram_chars(words, int(n)) / size, limit):
            return f"top_{n}_gram_char_frac"
    for n, limit in sorted((rules.get("dup_ngram_char_frac") or {}).items()):
        if _above(_duplicate_ngram_chars(words, int(n)) / size, limit):
            return f"dup_{n}_gram_char_frac"
    return None


def symbol_problem(text: str, rules: dict[str, Any]) -> str | None:
    """The first Gopher symbol limit `text` breaks (e.g. "min_alpha_words_ratio"), or None."""
    words = text.split()
    if not words:
        return None
    limit = rules.get("max_symbol_word_ratio")
    if _above(text.count("#") / len(words), limit):
        return "hash_word_ratio"
    if _above(sum(text.count(e) for e in _ELLIPSES) / len(words), limit):
        return "ellipsis_word_ratio"
    lines = text.splitlines()
    if _above(sum(line.lstrip().startswith(_BULLETS) for line in lines) / len(lines), rules.get("max_bullet_lines_ratio")):
        return "bullet_lines_ratio"
    if _above(sum(line.rstrip().endswith(_ELLIPSES) for line in lines) / len(lines), rules.get("max_ellipsis_lines_ratio")):
        return "ellipsis_lines_ratio"
    alpha = sum(any(c.isalpha() for c in word) for word in words) / len(words)
    minimum = rules.get("min_alpha_words_ratio")
    if minimum is not None and alpha < minimum:
        return "min_alpha_words_ratio"
    return None


def word_counts(text: str) -> tuple[int, float]:
    """(words, mean word length) of a text, counting words that are not only punctuation or symbols
    (Gopher's word-count and mean-length rules)."""
    words = [w for w in text.split() if not all(unicodedata.category(c)[0] in "PS" for c in w)]
    return len(words), (sum(map(len, words)) / len(words) if words else 0.0)


def _above(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit


def _duplicates(items: list[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and their characters."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _top_repeated_ngram_chars(words: list[str], n: int) -> int:
    """Characters covered by the most frequent n-gram (joined by spaces), 0 when none repeats."""
    grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return 0
    gram, count = grams.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def _duplicate_ngram_chars(words: list[str], n: int) -> int:
    """Characters (spaces left out) of the n-grams that repeat an earlier one, counted without overlap."""
    seen: set[str] = set()
    chars = i = 0
    while i < len(words) - n + 1:
        gram = "".join(words[i:i + n])  # as datatrove keys them
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


# Language identification ----------------------------------------------------------------------------
_IDENTIFIER: dict[str, Any] = {}


def identifier():
    """py3langid's model (shipped inside the package, loaded once per process: ~1 s, ~130 MB).

    Chosen by benchmarks/language_id.py: as accurate as lingua's high-accuracy mode on whole
    sentences, far faster and lighter; see README "Your data"."""
    if "model" not in _IDENTIFIER:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _IDENTIFIER["model"] = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return _IDENTIFIER["model"]


def identifier_version() -> str:
    """Part of the cache key of every language map: a new model can give other answers."""
    from importlib.metadata import version

    return f"py3langid {version('py3langid')}"


def known_languages() -> list[str]:
    return sorted(set(identifier().nb_classes))


def check_languages(codes: list[str]) -> None:
    unknown = [code for code in codes if code not in set(identifier().nb_classes)]
    if unknown:
        raise HfkitError(f"data.clean.language: {unknown[0]!r} is not a language the identifier (py3langid) knows; "
                         "use ISO 639-1 codes such as en, de, fr, es, zh (known: "
                         f"{', '.join(known_languages())})")


def identify(text: str) -> tuple[str, float]:
    """(most likely language, its probability) of a text; ("", 0.0) for an empty one."""
    if not text.strip():
        return "", 0.0
    best, score = identifier().classify(text)
    return best, float(score)


def in_languages(text: str, wanted: tuple[str, ...], threshold: float) -> bool:
    """Do the `wanted` languages together have probability >= `threshold` for this text?

    Together, so a translation pair (English source, French target) is kept by [en, fr] though
    neither language alone is sure of the whole example. The full ranking (2x slower than the
    most likely language alone) is computed only where that one cannot decide: a wanted best at or
    above the threshold keeps the text, an unwanted best that leaves less than the threshold to
    every other language removes it."""
    best, score = identify(text)
    if not best:
        return threshold <= 0
    if best in wanted and score >= threshold:
        return True
    if best not in wanted and 1.0 - score < threshold:
        return False
    scores = dict(identifier().rank(text))
    return sum(float(scores.get(code, 0.0)) for code in wanted) >= threshold


# Over a split --------------------------------------------------------------------------------------
def texts_of(value: Any) -> list[str]:
    """The texts of one field: a string, or the contents of chat messages."""
    if value is None:
        return []
    if isinstance(value, list):
        return [m.get("content") or "" for m in value]
    return [str(value)]


def checks(cfg) -> list[tuple[str, str, dict]]:
    """The enabled filters of a CleanSection, in the order they run: (step name, check, options).

    Word bounds first (cheap, and a text of two words says little to the others), then repetition,
    symbols, language."""
    found = []
    if cfg.min_words is not None or cfg.max_words is not None:
        found.append(("words", "words", {"low": cfg.min_words, "high": cfg.max_words}))
    if cfg.mean_word_length is not None:
        found.append(("mean_word_length", "mean_word_length", {"low": cfg.mean_word_length[0],
                                                               "high": cfg.mean_word_length[1]}))
    if cfg.repetition is not None:
        found.append(("repetition", "repetition", cfg.repetition.model_dump()))
    if cfg.symbols is not None:
        found.append(("symbols", "symbols", cfg.symbols.model_dump()))
    if cfg.language is not None:
        check_languages(cfg.language)
        found.append(("language", "language", {"wanted": tuple(cfg.language), "threshold": cfg.language_threshold,
                                                "model": identifier_version()}))
    return found


def problem_batch(batch: dict[str, list], fields: tuple[str, ...], check: str, options: dict,
                  version: int = RULES_VERSION) -> dict[str, list]:
    """A `Dataset.map` function: per row, why `check` removes it ("" to keep it); `version` keys the cache."""
    problems = []
    for row in zip(*(batch[field] for field in fields)):
        texts = [text for value in row for text in texts_of(value)]
        problems.append(problem(check, texts, options) or "")
    return {"problem": problems}


def problem(check: str, texts: list[str], options: dict) -> str | None:
    """Why one example (its texts) fails `check`, or None."""
    if check == "repetition":
        return next(filter(None, (repetition_problem(text, options) for text in texts)), None)
    document = "\n\n".join(texts)
    if check == "symbols":
        return symbol_problem(document, options)
    if check == "language":
        if in_languages(document, options["wanted"], options["threshold"]):
            return None
        best, score = identify(document)
        return f"{best or 'no text'} ({score:.2f})"
    words, mean = word_counts(document)
    low, high = options["low"], options["high"]
    if check == "words":
        if low is not None and words < low:
            return f"{words} words, below min_words {low}"
        return f"{words} words, above max_words {high}" if high is not None and words > high else None
    if mean < low:
        return f"mean word length {mean:.2f}, below {low}"
    return f"mean word length {mean:.2f}, above {high}" if mean > high else None


def language_batch(batch: dict[str, list], fields: tuple[str, ...], model: str) -> dict[str, list]:
    """A `Dataset.map` function: each row's most likely language and its probability (`model` keys the cache)."""
    found = [identify("\n\n".join(t for value in row for t in texts_of(value)))
             for row in zip(*(batch[field] for field in fields))]
    return {"language": [language for language, _ in found], "score": [score for _, score in found]}
