"""Data: local files or a Hub dataset -> the task's columns -> cleaned, split, deduplicated.

`load_splits` returns a `DatasetDict` with `train`, `validation` and (when given) `test`, each
holding exactly the task's fields, plus the cleaning counts for the run folder.
"""

from __future__ import annotations

import codecs
import csv
import math
import os
from pathlib import Path
from typing import Any, Callable

from datasets import Dataset, DatasetDict

from hfkit import json_files
from hfkit.cleaning import clean_split, decontaminate
from hfkit.errors import HfkitError, first_line
from hfkit.schema import DataSection

BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
SPLIT_FILES = {"train": "train_file", "validation": "validation_file", "test": "test_file"}


def load_splits(cfg: DataSection, fields: tuple[str, ...], text_fields: tuple[str, ...], seed: int,
                splits: tuple[str, ...] = ("train", "validation", "test"),
                convert: Callable[[Dataset], Dataset] | None = None, optional: tuple[str, ...] = (),
                normalize_fields: tuple[str, ...] | None = None, training: bool = True,
                raw: dict[str, Dataset] | None = None) -> tuple[DatasetDict, dict[str, Any]]:
    """Load, map columns, clean the training split, hold out a validation split if needed,
    decontaminate, cap sizes.

    `fields` are the columns the task reads (`optional` ones are kept when present); `convert`
    (the task's) turns them into `text_fields`, the columns cleaning filters and deduplicates on,
    of which it may rewrite `normalize_fields` (all by default). Evaluation splits are read as they
    are: no row is rewritten or dropped, so scores compare with anyone's on the same files.
    Without `training` nothing is trained, so the training split is not decontaminated.
    `raw` gives the splits instead of the files (the evaluation rows of a stream, hfkit.streaming).
    Returns the splits and the counts per split.
    """
    raw = load_raw(cfg, splits) if raw is None else raw
    report: dict[str, Any] = {}
    cleaned = {}
    for split, ds in raw.items():
        ds = task_rows(ds, cfg, fields, text_fields, _describe(cfg, split), convert, optional)
        if split == "train":
            cleaned[split], report[split] = clean_split(ds, text_fields, cfg.clean, split, cfg.num_proc,
                                                        normalize_fields=normalize_fields)
        else:
            _check_complete(ds, text_fields, split, _describe(cfg, split))
            cleaned[split], report[split] = ds, [{"step": "loaded (evaluation data is not cleaned)", "rows": len(ds)}]

    if "validation" in splits and "validation" not in cleaned and "train" in cleaned:
        rows = len(cleaned["train"])
        held_out = math.ceil(rows * cfg.validation_fraction)  # how datasets rounds test_size
        if held_out >= rows:
            raise HfkitError(f"data: the train split has {rows} row(s), too few to hold out "
                             f"validation_fraction={cfg.validation_fraction}; add data.validation_file or more data")
        held = cleaned["train"].train_test_split(test_size=cfg.validation_fraction, seed=seed)
        cleaned["train"], cleaned["validation"] = held["train"], held["test"]
        report["validation"] = [{"step": "held out from train", "fraction": cfg.validation_fraction,
                                 "rows": len(cleaned["validation"])}]
    if training and cfg.clean.decontaminate and "train" in cleaned:
        held_out = [ds for split, ds in cleaned.items() if split != "train"]
        cleaned["train"], removed = decontaminate(cleaned["train"], held_out, text_fields, cfg.clean, normalize_fields)
        report["train"].append({"step": "decontaminate", "removed": removed, "rows": len(cleaned["train"])})
        if len(cleaned["train"]) == 0:
            raise HfkitError("data: every training example also appears in an evaluation split; "
                             "check the files or set data.clean.decontaminate: false")

    for split, limit in (("train", cfg.max_train_samples), ("validation", cfg.max_eval_samples),
                         ("test", cfg.max_eval_samples)):
        if limit is not None and split in cleaned and len(cleaned[split]) > limit:
            cleaned[split] = cleaned[split].select(range(limit))
            report[split].append({"step": f"first {limit}", "rows": limit})
    return DatasetDict(cleaned), report


def task_rows(ds: Dataset, cfg: DataSection, fields: tuple[str, ...], text_fields: tuple[str, ...], source: str,
              convert: Callable[[Dataset], Dataset] | None = None, optional: tuple[str, ...] = ()) -> Dataset:
    """The data's rows in the task's fields: columns mapped, the task's layout, text as strings."""
    ds = select_fields(ds, cfg.columns, fields, source=source, optional=optional)
    if convert is not None:
        ds = convert(ds)
    return _text_as_strings(ds, text_fields, source=source)


def _check_complete(ds: Dataset, fields: tuple[str, ...], split: str, source: str) -> None:
    """Evaluation rows are never dropped, so a missing value is an error to fix in the file."""
    for field in fields:
        values = ds.data.column(field)
        if values.null_count:
            row = next(i for i, value in enumerate(values.to_pylist()) if value is None)
            raise HfkitError(f"data: {source} ({split} split) has {values.null_count} row(s) without a {field!r} "
                             f"(first: row {row + 1}); evaluation data is never dropped or rewritten, so fix those rows")


def load_raw(cfg: DataSection, splits: tuple[str, ...]) -> dict[str, Dataset]:
    """The wanted splits as they are in the files or on the Hub (absent splits are left out)."""
    if cfg.dataset:
        return _load_hub(cfg, splits)
    found = {}
    for split in splits:
        path = getattr(cfg, SPLIT_FILES[split])
        if path:
            found[split] = load_file(Path(path), key=f"data.{SPLIT_FILES[split]}", field=cfg.field,
                                     file_type=cfg.file_type)
    return found


def load_file(path: Path, key: str, field: str | None = None, file_type: str | None = None) -> Dataset:
    """Read one json/jsonl/csv/parquet/txt file into a Dataset (cached by `datasets`); `field`: the
    key of a JSON document whose list holds the examples; `file_type`: data.file_type."""
    from datasets import load_dataset

    builder = check_file(path, key, file_type)
    digest = content_digest(path)
    try:
        if builder == "json":
            return _load_json(path, digest, field)
        options = csv_as_text(path) if builder == "csv" else {}
        # `description` is part of the builder's cache key, which otherwise goes by path and mtime
        return load_dataset(builder, data_files=str(path), split="train", description=f"sha256 {digest}", **options)
    except HfkitError:
        raise
    except Exception as err:  # datasets and pyarrow raise many types for malformed files
        cause = err.__cause__ or err
        if isinstance(cause, HfkitError):  # raised while datasets read the file (json_files.json_records)
            raise HfkitError(f"{key}: {cause}") from None
        raise HfkitError(f"{key}: cannot read {path} as {builder} ({first_line(cause)})") from None


def check_file(path: Path, key: str, file_type: str | None = None) -> str:
    """The `datasets` builder for a data file that exists, is a regular file (or a link to one), is
    not empty and is UTF-8 text (or parquet)."""
    if path.is_symlink() and not path.exists():
        raise HfkitError(f"{key}: {path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                         "point at the file itself")
    if path.is_dir():
        raise HfkitError(f"{key}: {path} is a folder, not a data file; give a file inside it")
    if not path.exists():
        raise HfkitError(f"{key}: file not found: {path}")
    if not path.is_file():
        kind = "FIFO" if path.is_fifo() else "socket" if path.is_socket() else "device" if (
            path.is_char_device() or path.is_block_device()) else "special file"
        raise HfkitError(f"{key}: {path} is a {kind}, not a regular file; give a data file")
    builder = file_builder(path, key, file_type)
    if path.stat().st_size == 0:
        raise HfkitError(f"{key}: {path} is empty")
    if builder != "parquet":
        _check_utf8(path, key)
    return builder


def content_digest(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks: the data caches' key. Path, size and modification
    time missed a same-size rewrite that kept an old mtime (`cp -p`, `rsync -a`, an unpacked archive).
    Hashing the 50,000-row prompt/completion file of benchmarks/data_scale.py (12.2 MB) took 12 ms, against
    6.6 s to prepare it."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_builder(path: Path, key: str, file_type: str | None = None) -> str:
    """How to read a data file: by the extension of its name, else of the file a symbolic link
    points to (the Hub cache links named files to hash-named blobs), else as `data.file_type` says."""
    names, link = [path.name], path
    while link.is_symlink() and len(names) < 40:  # the link's own name first, then each target's in turn
        link = link.parent / os.readlink(link)
        names.append(link.name)
    for name in names:
        builder = BUILDERS.get(Path(name).suffix.lower())
        if builder is not None:
            return builder
    if file_type:
        return BUILDERS[f".{file_type}"]
    fix = "set data.file_type to json, jsonl, csv, parquet or txt"
    suffix = Path(names[-1]).suffix
    if suffix:
        raise HfkitError(f"{key}: {path.name} has an unknown extension ({suffix}); expected one of "
                         f"{', '.join(BUILDERS)}, or {fix} to read it as one of those")
    shown = " or ".join(repr(name) for name in names)
    raise HfkitError(f"{key}: cannot tell how to read {path}: {shown} has no extension hfkit knows "
                     f"({', '.join(BUILDERS)}); {fix}")


def _load_json(path: Path, digest: str, field: str | None = None) -> Dataset:
    """JSON Lines, a JSON array of objects, or a JSON document holding the list (under `field`, or
    SQuAD's "data", nested or flat), parsed by Python's json module.

    The packaged `json` builder parses with pyarrow, which turns strings that look like dates
    ("2021-03-05") into timestamps; a target string must stay exactly what the file says.
    The result is cached by `datasets`, keyed on the file's path and content (`digest`).
    """
    return Dataset.from_generator(json_files.json_records,
                                  gen_kwargs={"path": str(path), "field": field, "content": digest,
                                              "parser": json_files.JSON_PARSER_VERSION})


def select_fields(ds: Dataset, columns: dict[str, str], fields: tuple[str, ...], source: str,
                  optional: tuple[str, ...] = ()) -> Dataset:
    """Rename the file's columns to the task's fields (data.columns) and keep only those."""
    missing = [name for name in columns if name not in ds.column_names]
    for name in missing:  # written the other way round: {task field: file column}
        if columns[name] in ds.column_names and name in fields:
            raise HfkitError(f"data.columns maps the file's column to the task's field: {source} has a column "
                             f"{columns[name]!r} but no {name!r}; write {{{columns[name]}: {name}}}")
    if missing:
        raise HfkitError(f"data.columns: {source} has no column {missing[0]!r}; its columns are: {', '.join(ds.column_names)}")
    taken = [(old, new) for old, new in columns.items() if new != old and new in ds.column_names and new not in columns]
    if taken:
        old, new = taken[0]
        raise HfkitError(f"data.columns: {{{old}: {new}}} renames {old!r} to {new!r}, a column {source} already has; "
                         "map each task field from one column")
    ds = ds.rename_columns({old: new for old, new in columns.items() if old != new})
    absent = [field for field in fields if field not in ds.column_names]
    if absent:
        raise HfkitError(
            f"data: {source} has no {absent[0]!r} column (its columns are: {', '.join(ds.column_names)}); "
            f"map one with data.columns, e.g. {{your_column: {absent[0]}}}"
        )
    return ds.select_columns([*fields, *(name for name in optional if name in ds.column_names)])


def csv_as_text(path: Path) -> dict[str, Any]:
    """Read every CSV cell as a string: "00420" must not become 420, nor "none" a missing value."""
    from datasets import Features, Value

    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), [])
    return {"features": Features({name: Value("string") for name in header}), "keep_default_na": False}


def _text_as_strings(ds: Dataset, text_fields: tuple[str, ...], source: str) -> Dataset:
    """Text fields must hold text: numbers (a completion "42" written as 42) are read as text,
    lists and objects are refused. A `messages` field must be a list of {role, content}."""
    from datasets import List, Value

    for field in text_fields:
        feature = ds.features[field]
        if field == "messages":
            _check_messages(feature, source)
        elif isinstance(feature, Value) and feature.dtype not in ("string", "large_string"):
            ds = ds.cast_column(field, Value("string"))
        elif isinstance(feature, Value):
            continue
        elif isinstance(feature, (List, dict)) or not _only_scalars(ds, field):
            raise HfkitError(f"data: column {field!r} of {source} holds lists or objects; it must hold text")
        else:  # numbers and strings mixed in one column: datasets keeps them as JSON
            features = ds.features.copy()
            features[field] = Value("string")
            ds = ds.map(_scalars_as_text, fn_kwargs={"field": field}, features=features, desc=f"read {field} as text")
    return ds


def _check_messages(feature, source: str) -> None:
    from datasets import List, Value

    turn = feature.feature if isinstance(feature, List) else None
    if not (isinstance(turn, dict) and all(isinstance(turn.get(key), Value) and turn[key].dtype in ("string", "large_string")
                                           for key in ("role", "content"))):
        raise HfkitError(f"data: column 'messages' of {source} must be a list of {{role, content}} turns, "
                         'e.g. [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]')


def _only_scalars(ds: Dataset, field: str) -> bool:
    return all(value is None or isinstance(value, (str, int, float, bool)) for value in ds.select_columns([field])[:][field])


def _scalars_as_text(example: dict[str, Any], field: str) -> dict[str, Any]:
    value = example[field]
    return {field: str(value) if isinstance(value, (int, float, bool)) else value}


def _check_utf8(path: Path, key: str) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise HfkitError(f"{key}: {path} is not valid UTF-8 (byte {offset + err.start}); re-save it as UTF-8") from None
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise HfkitError(f"{key}: {path} is not valid UTF-8 (it ends inside a character); re-save it as UTF-8") from None


def _load_hub(cfg: DataSection, splits: tuple[str, ...]) -> dict[str, Dataset]:
    from datasets import load_dataset

    try:
        dataset = load_dataset(cfg.dataset, cfg.config)
    except Exception as err:
        raise HfkitError(f"data.dataset: cannot load {cfg.dataset!r} ({first_line(err)}); offline it must already be "
                         "in the datasets cache, or use local files with data.train_file") from None
    names = {"train": cfg.train_split, "validation": cfg.validation_split, "test": cfg.test_split}
    if names["train"] not in dataset and "train" in splits:
        raise HfkitError(f"data.train_split: {cfg.dataset!r} has no split {names['train']!r}; it has {', '.join(dataset)}")
    return {split: dataset[names[split]] for split in splits if names[split] in dataset}


def _describe(cfg: DataSection, split: str) -> str:
    if cfg.dataset:
        return f"{cfg.dataset} ({split} split)"
    path = getattr(cfg, SPLIT_FILES[split])
    return Path(path).name if path else f"the {split} rows"  # held out from a stream
