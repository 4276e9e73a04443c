"""JSON and JSON Lines data files, read with Python's json module: JSON Lines, a JSON array of
objects, or one document holding the list (under data.field, or SQuAD's "data", nested or flat).

The packaged `json` builder of `datasets` parses with pyarrow, which turns strings that look like
dates ("2021-03-05") into timestamps; a target string must stay exactly what the file says.
"""

from __future__ import annotations

import json
from pathlib import Path

from hfkit.errors import HfkitError

# Part of the JSON cache key: bump when json_records reads files differently (datasets keys its
# generator cache on the arguments, not on the generator's code).
JSON_PARSER_VERSION = 3


def json_records(path: str, content: str, field: str | None = None, parser: int = JSON_PARSER_VERSION):
    """The file's examples, one dict each (`content` and `parser` only key the cache)."""
    with open(path, encoding="utf-8-sig") as f:
        text = f.read()
    records = parse_json(path, text)
    if (isinstance(records, list) and len(records) == 1 and is_document(records[0], field)
            and (field is not None or set(records[0]) <= {"version", "data"})):
        records = records[0]  # a document written on one line (not one example that has a "data" list)
    if is_squad(records) and field is None:
        records = squad_records(records["data"])  # the official SQuAD layout: data -> paragraphs -> qas
    elif is_document(records, field):
        records = records[field or "data"]  # e.g. {"version": ..., "data": [flat rows]}, transformers' QA fixtures
    elif field is not None:
        raise HfkitError(f"{path}: data.field is {field!r}, but the file "
                         + (f"has no list under that key (its keys: {', '.join(map(str, records))})"
                            if isinstance(records, dict) else "is not one JSON object; remove data.field"))
    if isinstance(records, dict):
        raise HfkitError(f"{path}: holds one JSON object, not a list of examples (its keys: "
                         f"{', '.join(map(str, records))}); set data.field to the key that holds the list, or "
                         "give JSON Lines (one object per line) or a JSON array of objects")
    if not records:
        raise HfkitError(f"{path}: holds no examples (only blank lines or an empty list)")
    keys = None
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise HfkitError(f"{path}: example {number} is {type(record).__name__}, not a JSON object")
        keys = keys if keys is not None else set(record)
        if set(record) != keys:  # datasets would answer with its own KeyError, or drop the key from the schema
            absent, extra = sorted(keys - set(record)), sorted(set(record) - keys)
            what = f"has no {absent[0]!r}" if absent else f"has {extra[0]!r}, which example 1 has not"
            raise HfkitError(f"{path}: example {number} {what}; every example needs the same keys "
                             "(write null for a missing value)")
    check_value_kinds(path, records)
    yield from records


KINDS = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number", float: "a number"}


def check_value_kinds(path: str, records: list[dict]) -> None:
    """A column that holds lists or objects holds them alike in every example (null anywhere).

    `datasets` writes a column that mixes kinds as JSON text, through a loop that re-reads the batch
    until pyarrow stops naming a field; with some keys it never stops (datasets 5.2: a fuzzed row
    kept a test in that loop for over an hour). pyarrow's own inference says at once whether a
    column has one kind, so such a file gets one line that names the column instead."""
    import pyarrow as pa

    for column in records[0]:
        values = [record[column] for record in records]
        if not any(isinstance(value, (dict, list)) for value in values):
            continue  # scalars only: a number among strings is read as its text ("42"), which is safe
        try:
            pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError, ValueError,
                TypeError) as err:
            kinds = sorted({KINDS.get(type(value), type(value).__name__) for value in values if value is not None})
            what = (f"holds {' and '.join(kinds)}" if len(kinds) > 1 else
                    f"holds {kinds[0] if kinds else 'values'} whose contents differ in kind from example to example")
            raise HfkitError(f"{path}: the column {column!r} {what} ({str(err).splitlines()[0][:120]}); every "
                             "example's value of a column must be one kind (null allowed): fix the file, or "
                             "drop the column if the task does not read it") from None


def document_version(path: Path):
    """The top-level "version" of a JSON file that holds one document with a "data" list (SQuAD's
    layout, e.g. "v2.0"); None for anything else (JSON Lines, CSV, a file that cannot be read)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = next((line for line in f if line.strip()), "")
        if not first.lstrip().startswith("{"):
            return None
        try:
            document = json.loads(first)  # JSON Lines, or a document written on one line
        except json.JSONDecodeError:
            with open(path, encoding="utf-8-sig") as f:
                document = json.load(f)  # a document over several lines
    except (OSError, ValueError):
        return None
    return document.get("version") if isinstance(document, dict) and isinstance(document.get("data"), list) else None


def parse_json(path: str, text: str):
    """A JSON document, or the objects of a JSON Lines file; a broken line is named by its number."""
    try:
        if text.lstrip().startswith("["):
            return json.loads(text)
        lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        records = []
        for index, (number, line) in enumerate(lines):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                if index > 0:  # earlier lines were whole objects: JSON Lines with a broken line
                    raise HfkitError(f"{path}: line {number} is not valid JSON ({err.msg}, column {err.colno}); "
                                     "each line of a JSON Lines file must be one complete object") from None
                return json.loads(text)  # one JSON document spread over several lines
        return records
    except json.JSONDecodeError as err:
        raise HfkitError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None


def is_document(document, field: str | None) -> bool:
    """A JSON object whose examples are the list under `field` (default "data")."""
    rows = document.get(field or "data") if isinstance(document, dict) else None
    return isinstance(rows, list)


def is_squad(document) -> bool:
    articles = document.get("data") if isinstance(document, dict) else None
    return isinstance(articles, list) and bool(articles) and isinstance(articles[0], dict) and "paragraphs" in articles[0]


def squad_records(articles: list[dict]) -> list[dict]:
    """Flatten SQuAD's nested JSON into one row per question, in the flat (Hub) layout."""
    rows = []
    for article in articles:
        for paragraph in article.get("paragraphs", []):
            for qa in paragraph.get("qas", []):
                answers = qa.get("answers", [])
                rows.append({
                    "id": str(qa.get("id", len(rows))),
                    "title": article.get("title", ""),
                    "context": paragraph["context"],
                    "question": qa["question"],
                    "answers": {"text": [a["text"] for a in answers], "answer_start": [a["answer_start"] for a in answers]},
                })
    return rows
