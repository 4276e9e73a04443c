"""Cleaning of training data: normalise, drop empty/short/long examples, quality filters (hfkit.quality),
exact and near-duplicate removal.

Every step records how many rows it removed, so the run folder says what happened to the data.
Inside `recording()` (what `hfkit data` uses) the steps also keep what they removed: three rows
per filter and why, the largest duplicate clusters, every contamination match.
The fields handed in are the example's text fields; a field may be a string or a list of chat
messages ({role, content}). Evaluation splits are never cleaned (hfkit.data); decontamination
compares training rows with the eval rows' normalised text, and removes only training rows.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from datasets import Dataset

from hfkit import quality
from hfkit.errors import HfkitError
from hfkit.schema import CleanSection

_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")


class Findings:
    """What cleaning removed, beyond the counts: per step SHOWN rows with the reason and the reasons
    counted, the largest duplicate clusters, and every training/evaluation contamination match."""

    SHOWN = 3
    CLUSTERS = 5

    def __init__(self):
        self.removed: dict[str, list[dict]] = {}
        self.reasons: dict[str, Counter] = {}
        self.clusters: dict[str, list[dict]] = {}
        self.contamination: list[dict] = []

    def note_removed(self, step: str, ds: Dataset, problems: list[str]) -> None:
        removed = [i for i, why in enumerate(problems) if why]
        reasons = self.reasons.setdefault(step, Counter())
        reasons.update(_reason_key(step, problems[i]) for i in removed)
        shown = self.removed.setdefault(step, [])
        wanted = removed[:max(0, self.SHOWN - len(shown))]
        if wanted:
            shown += [{**row, "why": problems[i]} for i, row in zip(wanted, ds.select(wanted).to_list())]

    def note_clusters(self, step: str, ds: Dataset, groups: dict[int, list[int]]) -> None:
        """`groups`: the kept row -> every row of its cluster (itself first)."""
        biggest = sorted((members for members in groups.values() if len(members) > 1), key=len, reverse=True)
        self.clusters[step] = [{"size": len(members), "rows": ds.select(members[:self.SHOWN]).to_list()}
                               for members in biggest[:self.CLUSTERS]]


_FINDINGS: ContextVar[Findings | None] = ContextVar("hfkit_cleaning_findings", default=None)


@contextmanager
def recording() -> Iterator[Findings]:
    """Keep what the cleaning steps run inside this block remove (training keeps only counts)."""
    findings = Findings()
    token = _FINDINGS.set(findings)
    try:
        yield findings
    finally:
        _FINDINGS.reset(token)


def _reason_key(step: str, why: str) -> str:
    if step == "language":
        return why.split(" ")[0]  # the language identified
    if step in ("words", "mean_word_length"):
        return "below the minimum" if "below" in why else "above the maximum"
    return why


def normalize_whitespace(text: str) -> str:
    """Unify line endings, collapse runs of spaces/tabs inside lines, strip the text's ends.

    The indentation of every line after the first stays as it is: in code it carries meaning."""
    lines = [_collapse(line) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return "\n".join(lines).strip()


def _collapse(line: str) -> str:
    body = line.lstrip(" \t")
    return line[:len(line) - len(body)] + _HORIZONTAL_SPACE.sub(" ", body).rstrip() if body else ""


def example_text(example: dict[str, Any], fields: tuple[str, ...]) -> str:
    """One string for an example: what dedup hashes and the length filters measure."""
    return "\n".join(_as_text(example[field]) for field in fields)


def clean_split(ds: Dataset, fields: tuple[str, ...], cfg: CleanSection, split: str,
                num_proc: int | None = None, normalize_fields: tuple[str, ...] | None = None,
                strict: bool = True) -> tuple[Dataset, list[dict[str, Any]]]:
    """Run the enabled cleaning steps in order; return the dataset and per-step counts.

    Filters and dedup look at `fields`; normalisation rewrites `normalize_fields` (default: the
    same), so a task can protect text that offsets point into (a QA context). Unless `strict`
    (a chunk of a stream), a split left empty is returned, not an error.
    """
    steps = [{"step": "loaded", "rows": len(ds)}]
    if len(ds) == 0 and strict:
        raise HfkitError(f"data: the {split} split has no rows; check the file")

    def record(name: str, new: Dataset, option: str) -> Dataset:
        removed = len(ds) - len(new)
        steps.append({"step": name, "removed": removed, "rows": len(new)})
        if len(new) == 0 and strict:
            raise HfkitError(f"data: the {split} split is empty after cleaning step '{name}' "
                             f"(it removed all {removed} rows); check the data or relax data.clean.{option}")
        return new

    if cfg.normalize_unicode or cfg.normalize_whitespace:
        ds = ds.map(_normalize_batch, batched=True, num_proc=num_proc, desc=f"normalise {split}",
                    fn_kwargs={"fields": fields if normalize_fields is None else normalize_fields,
                               "unicode": cfg.normalize_unicode, "whitespace": cfg.normalize_whitespace})
        steps.append({"step": "normalize", "removed": 0, "rows": len(ds)})
    if cfg.drop_empty:
        ds = record("drop_empty", ds.filter(_has_no_empty_field, fn_kwargs={"fields": fields}, num_proc=num_proc,
                                            desc=f"drop empty {split}"), "drop_empty")
    if cfg.min_chars is not None or cfg.max_chars is not None:
        ds = record("length", ds.filter(_length_ok, num_proc=num_proc, desc=f"length filter {split}",
                                        fn_kwargs={"fields": fields, "low": cfg.min_chars, "high": cfg.max_chars}),
                    "min_chars / max_chars")
    findings = _FINDINGS.get()
    for name, check, options in quality.checks(cfg):
        problems = _problems(ds, fields, check, options, num_proc, split)
        if findings is not None:
            findings.note_removed(name, ds, problems)
        keep = [i for i, why in enumerate(problems) if not why]
        ds = record(name, ds.select(keep) if len(keep) < len(ds) else ds, _OPTIONS[name])
    if cfg.dedup:
        keys = hashes(ds, fields)
        if findings is not None:
            findings.note_clusters("dedup", ds, _same_key(keys))
        ds = record("dedup", ds.select(_first_of_each(keys)), "dedup")
    if cfg.near_dedup:
        matches: dict[int, int] = {}
        keep = near_duplicate_keep(ds, fields, cfg.near_dedup_threshold, matches)
        if findings is not None:
            findings.note_clusters("near_dedup", ds, _matched(keep, matches))
        ds = record("near_dedup", ds.select(keep), "near_dedup_threshold")
    return ds, steps


def _same_key(keys: list[str]) -> dict[int, list[int]]:
    """Exact duplicates: the first row of each key -> every row with it."""
    groups = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return {members[0]: members for members in groups.values()}


def _matched(keep: list[int], matches: dict[int, int]) -> dict[int, list[int]]:
    """Near duplicates: each kept row -> itself and the rows dropped as its near copies."""
    groups = {i: [i] for i in keep}
    for dropped, kept in matches.items():
        groups[kept].append(dropped)
    return groups


_OPTIONS = {"words": "min_words / max_words", "mean_word_length": "mean_word_length", "repetition": "repetition",
            "symbols": "symbols", "language": "language / language_threshold"}


def _problems(ds: Dataset, fields: tuple[str, ...], check: str, options: dict, num_proc: int | None,
              split: str) -> list[str]:
    """Why each row fails a quality filter ("" when it passes), by a cached `Dataset.map`."""
    if not len(ds):
        return []
    verdicts = ds.map(quality.problem_batch, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                      fn_kwargs={"fields": fields, "check": check, "options": options, "version": quality.RULES_VERSION},
                      desc=f"{check} filter {split}")
    return verdicts.data.column("problem").to_pylist()


def languages(ds: Dataset, fields: tuple[str, ...], num_proc: int | None = None) -> Dataset:
    """Each row's most likely language and its probability (`language`, `score`), by a cached map."""
    return ds.map(quality.language_batch, batched=True, remove_columns=ds.column_names, num_proc=num_proc,
                  fn_kwargs={"fields": fields, "model": quality.identifier_version()}, desc="identify languages")


def decontaminate(train: Dataset, held_out: list[Dataset], fields: tuple[str, ...], cfg: CleanSection,
                  normalize_fields: tuple[str, ...] | None = None) -> tuple[Dataset, int]:
    """Drop training examples whose text also appears in an evaluation split.

    The (cleaned) training rows are compared with the eval rows normalised the same way, so a
    difference in spaces or Unicode forms does not hide a copy; the eval rows are not changed."""
    seen = held_out_hashes(held_out, fields, cfg, normalize_fields)
    train_hashes = hashes(train, fields)
    keep = [i for i, h in enumerate(train_hashes) if h not in seen]
    if _FINDINGS.get() is not None and len(keep) < len(train):
        _note_matches(_FINDINGS.get(), train, train_hashes, held_out, fields, cfg, normalize_fields)
    return (train.select(keep) if len(keep) < len(train) else train), len(train) - len(keep)


def _note_matches(findings: Findings, train: Dataset, train_hashes: list[str], held_out: list[Dataset],
                  fields: tuple[str, ...], cfg: CleanSection, normalize_fields: tuple[str, ...] | None) -> None:
    """Every removed training row with the evaluation row it matched (`eval_set`: its place in `held_out`)."""
    where = {}
    for number, ds in enumerate(held_out):
        for row, key in enumerate(hashes(ds, fields, _normalizer(cfg, fields if normalize_fields is None
                                                                 else normalize_fields))):
            where.setdefault(key, (number, row))
    for i, key in enumerate(train_hashes):
        if key in where:
            number, row = where[key]
            findings.contamination.append({"train_row": i, "train": train[i], "eval_set": number, "eval_row": row,
                                           "eval": held_out[number][row]})


def held_out_hashes(held_out: list[Dataset], fields: tuple[str, ...], cfg: CleanSection,
                    normalize_fields: tuple[str, ...] | None = None) -> set[str]:
    """Hashes of the evaluation rows' text, normalised as training rows are (the rows stay as they are)."""
    seen: set[str] = set()
    for ds in held_out:
        seen.update(hashes(ds, fields, _normalizer(cfg, fields if normalize_fields is None else normalize_fields)))
    return seen


def hashes(ds: Dataset, fields: tuple[str, ...], normalize: dict | None = None) -> list[str]:
    """A content hash per example (of its text normalised as `normalize` says), computed with a
    cached `Dataset.map` (a re-run only reads it back)."""
    hashed = ds.map(_hash_batch, batched=True, remove_columns=ds.column_names,
                    fn_kwargs={"fields": fields, "normalize": normalize}, desc="hash examples")
    return hashed.data.column("hash").to_pylist()


def _normalizer(cfg: CleanSection, fields: tuple[str, ...]) -> dict | None:
    if not (cfg.normalize_unicode or cfg.normalize_whitespace):
        return None
    return {"fields": fields, "unicode": cfg.normalize_unicode, "whitespace": cfg.normalize_whitespace}


def _hash_batch(batch: dict[str, list], fields: tuple[str, ...], normalize: dict | None = None) -> dict[str, list]:
    if normalize is not None:
        batch = {**batch, **_normalize_batch(batch, **normalize)}
    rows = zip(*(batch[field] for field in fields))
    return {"hash": [hashlib.sha1("\n".join(map(_as_text, row)).encode()).hexdigest() for row in rows]}


def near_duplicate_keep(ds: Dataset, fields: tuple[str, ...], threshold: float,
                        matches: dict[int, int] | None = None) -> list[int]:
    """Indices to keep: the first of each group whose MinHash Jaccard estimate passes `threshold`
    (`matches`, when given, gets each dropped index -> the kept one it matched)."""
    from datasketch import MinHash, MinHashLSH

    num_perm = 128
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    keep = []
    columns = ds.select_columns(list(fields))[:]  # one read of every row, not one query per row
    for i, row in enumerate(zip(*(columns[field] for field in fields))):
        signature = MinHash(num_perm=num_perm, seed=1)
        signature.update_batch(_shingles("\n".join(map(_as_text, row)).lower()))
        found = lsh.query(signature)
        if found:
            if matches is not None:
                matches[i] = min(map(int, found))
            continue
        lsh.insert(str(i), signature)
        keep.append(i)
    return keep


def _shingles(text: str, size: int = 5) -> list[bytes]:
    # Character 5-grams: no word segmentation needed, and enough of them even for short examples.
    if len(text) <= size:
        return [text.encode()]
    return [text[i:i + size].encode() for i in range(len(text) - size + 1)]


def _first_of_each(keys: list[str]) -> list[int]:
    seen: set[str] = set()
    keep = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


def _normalize_batch(batch: dict[str, list], fields: tuple[str, ...], unicode: bool, whitespace: bool) -> dict[str, list]:
    def norm(text: str | None) -> str | None:
        if text is None:
            return None
        if unicode:
            text = unicodedata.normalize("NFKC", text)
        return normalize_whitespace(text) if whitespace else text

    out = {}
    for field in fields:
        out[field] = [
            [{**m, "content": norm(m.get("content"))} for m in value] if isinstance(value, list) else norm(value)
            for value in batch[field]
        ]
    return out


def _has_no_empty_field(example: dict[str, Any], fields: tuple[str, ...]) -> bool:
    for field in fields:
        value = example[field]
        if isinstance(value, list):
            if not value or any(not (m.get("content") or "").strip() for m in value):
                return False
        elif not (value or "").strip():
            return False
    return True


def _length_ok(example: dict[str, Any], fields: tuple[str, ...], low: int | None, high: int | None) -> bool:
    n = len(example_text(example, fields))
    return (low is None or n >= low) and (high is None or n <= high)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # chat messages
        return "\n".join(f"{m.get('role', '')}: {m.get('content') or ''}" for m in value)
    return str(value)
