"""`data.streaming: true`: the training split read, cleaned and tokenized on the fly, in bounded memory.

Training rows come from `datasets` streaming (a Hub dataset; csv, parquet and txt files) or, for
JSON Lines, from a line-by-line reader (Python's json, so "2021-03-05" stays a string; a JSON array
or a nested SQuAD file is read whole, so write JSON Lines to stream). Then, in order:
- shuffled in a buffer of SHUFFLE_BUFFER rows (seed: training.seed, a new order every pass);
- split by process with `datasets.distributed.split_dataset_by_node` (whole shards when their
  number is a multiple of the process count, else every n-th row): no row goes to two processes;
- in chunks of CHUNK_ROWS rows, put through the in-memory path's own code: column mapping, the
  task's layout, normalisation, the empty/length and quality filters (hfkit.quality); exact dedup
  against the hashes of the last DEDUP_WINDOW distinct examples this process kept (an 8-byte hash in a set and a queue,
  ~100 bytes each: at most ~100 MB; a copy further back is kept); decontamination against the
  evaluation rows; tokenization (and bfd packing) by the task.
Near-duplicate removal is refused: MinHash LSH compares every example with every other one.
`max_train_samples` keeps the stream's first rows as read (before cleaning, unlike in memory).
With several processes, each deduplicates its own share.

The stream never ends: when a process's share runs out, another pass starts with an empty dedup
window, and training.max_steps (required) ends training. The evaluation split is a regular
Dataset: the validation file or Hub split, or else the first `max_eval_samples` rows of the stream
(which training then skips); it is capped by `max_eval_samples` and never cleaned.

Resuming: Trainer keeps no position for an IterableDataset; it skips the batches already trained
on by reading them again (accelerate's skip_first_batches). Replayed rows are read, cleaned,
deduplicated and tokenized exactly as the first time (so the dedup window is rebuilt too) and not
trained on: a resume costs the preparation of the skipped rows (3,500-4,200 rows/s with SmolLM2's
tokenizer on 2 shared cores, benchmarks/data_scale.py), never a training step. The counts (rows read and removed per
step, tokenized, cut) grow as the stream is read, for this process's share, up to one chunk ahead
of training; metrics.json gets them at the end of training.
"""

from __future__ import annotations

import json
from collections import deque
from itertools import count, islice
from pathlib import Path
from typing import Any, Iterator

import torch
from datasets import Dataset

from hfkit import data, json_files
from hfkit.cleaning import clean_split, hashes, held_out_hashes
from hfkit.errors import HfkitError, first_line

CHUNK_ROWS = 1000  # rows cleaned and tokenized together
SHUFFLE_BUFFER = 10_000
DEDUP_WINDOW = 1_000_000  # distinct example hashes remembered per process


def eval_splits(recipe, task) -> tuple[dict[str, Dataset], dict[str, Any]]:
    """The evaluation splits, materialised as for files and capped by max_eval_samples."""
    cfg = recipe.data
    raw = {split: _eval_rows(cfg, split) for split in ("validation", "test") if _has_split(cfg, split)}
    held = None
    if "validation" not in raw:
        if cfg.max_eval_samples is None:
            raise HfkitError("data.max_eval_samples: a stream without a validation split holds out its first "
                             "max_eval_samples rows for evaluation; set it (e.g. 500) or give data.validation_file")
        raw["validation"] = Dataset.from_list(list(islice(iter(_raw_stream(cfg)), cfg.max_eval_samples)))
        held = len(raw["validation"])
    splits, report = data.load_splits(cfg, task.fields(), task.text_fields(), seed=0, splits=tuple(raw),
                                      convert=task.convert, optional=task.optional_fields(),
                                      normalize_fields=task.normalize_fields(), training=False, raw=raw)
    if held is not None:
        report["validation"] = [{"step": "the stream's first rows (training skips them)", "rows": held}]
    return splits, report


def train_stream(recipe, task, tokenizer, held_out: list[Dataset], rank: int = 0, world: int = 1) -> TrainStream:
    """This process's share of the training stream, cleaned and tokenized as it is read."""
    cfg = recipe.data
    source = _raw_stream(cfg)
    if not _has_split(cfg, "validation"):  # evaluation holds out the stream's first rows
        source = source.skip(cfg.max_eval_samples)
    if cfg.max_train_samples:
        source = source.take(cfg.max_train_samples)  # the first rows of the file, before cleaning
    source = source.shuffle(seed=recipe.training.get("seed", 42), buffer_size=SHUFFLE_BUFFER)
    if world > 1:
        from datasets.distributed import split_dataset_by_node

        source = split_dataset_by_node(source, rank=rank, world_size=world)
    seen = held_out_hashes(held_out, task.text_fields(), cfg.clean, task.normalize_fields()) if cfg.clean.decontaminate else set()
    # A chunk is small: worker processes (data.num_proc) would cost more to start than they save.
    one_process = recipe.model_copy(update={"data": cfg.model_copy(update={"num_proc": None})})
    return TrainStream(source, type(task)(one_process, task.encoder_decoder), tokenizer, seen, rank, world)


def check_first_rows(recipe, task) -> int:
    """Read the stream's first chunk into the task's fields (what `hfkit validate` can check); its size."""
    cfg = recipe.data
    rows = list(islice(iter(_raw_stream(cfg)), CHUNK_ROWS))
    if not rows:
        raise HfkitError("data.train_file: the training stream has no rows")
    data.task_rows(Dataset.from_list(rows), cfg, task.fields(), task.text_fields(), "the training stream's first rows",
                   task.convert, task.optional_fields())
    return len(rows)


class TrainStream(torch.utils.data.IterableDataset):
    """A never-ending stream of tokenized training examples (see the module docstring)."""

    split_by_process = True  # hfkit.trainer batches it as it is; accelerate must not split it again

    def __init__(self, source, task, tokenizer, eval_hashes: set[str], rank: int, world: int):
        self.source, self.task, self.tokenizer, self.eval_hashes = source, task, tokenizer, eval_hashes
        self.rank, self.world = rank, world
        self.cleaning: list[dict] = []  # metrics.json's cleaning steps, kept up to date
        self.counts: dict[str, int] = {}  # what tokenizing counted, summed over chunks
        self.removed: dict[str, int] = {}
        self.read = self.passes = 0
        self.max_passes: int | None = None  # None: never ends (training); `hfkit data` reads one pass

    def __iter__(self) -> Iterator[dict]:
        worker = torch.utils.data.get_worker_info()
        if worker is not None and worker.num_workers > 1:
            raise HfkitError("training.dataloader_num_workers: data.streaming reads in the training process; set it to 0")
        for number in count() if self.max_passes is None else range(self.max_passes):
            self.source.set_epoch(number)  # a new shuffle order per pass
            self.passes = number + 1
            window, produced = DedupWindow(DEDUP_WINDOW), 0
            rows = iter(self.source)
            while chunk := list(islice(rows, CHUNK_ROWS)):
                for example in self._prepare(chunk, window):
                    produced += 1
                    yield example
            if not produced:
                raise HfkitError("data: no training example is left in this process's share of the stream after "
                                 "cleaning and tokenizing; check the data or data.clean")

    def _prepare(self, chunk: list[dict], window: DedupWindow) -> Iterator[dict]:
        from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

        task, cfg = self.task, self.task.recipe.data
        shown = is_progress_bar_enabled()
        disable_progress_bar()  # a bar per chunk says nothing
        try:
            source = f"the training stream (rows {self.read + 1}-{self.read + len(chunk)} of process {self.rank})"
            ds = data.task_rows(Dataset.from_list(chunk), cfg, task.fields(), task.text_fields(), source,
                                task.convert, task.optional_fields())
            self.read += len(chunk)
            ds, steps = clean_split(ds, task.text_fields(), cfg.clean.model_copy(update={"dedup": False}), "train",
                                    normalize_fields=task.normalize_fields(), strict=False)
            for step in steps[1:]:
                self._count(step["step"], step.get("removed", 0))
            for step, on in (("dedup", cfg.clean.dedup), ("decontaminate", bool(self.eval_hashes))):
                if on:
                    self._count(step, 0)  # listed even while nothing was removed
            keep = []
            for i, key in enumerate(hashes(ds, task.text_fields()) if len(ds) else []):
                if cfg.clean.dedup and not window.add(key):
                    self._count("dedup", 1)
                elif key in self.eval_hashes:
                    self._count("decontaminate", 1)
                else:
                    keep.append(i)
            tokenized = task.tokenize(ds.select(keep), self.tokenizer, "train") if keep else None
        finally:
            if shown:
                enable_progress_bar()
        if tokenized is not None:
            for key, value in tokenized.counts.items():
                self.counts[key] = self.counts.get(key, 0) + value
        self._update_report()
        yield from tokenized.dataset if tokenized is not None else ()

    def _count(self, step: str, removed: int) -> None:
        self.removed[step] = self.removed.get(step, 0) + removed

    def _update_report(self) -> None:
        where = f"process {self.rank} of {self.world}, " if self.world > 1 else ""
        steps = [{"step": f"streamed ({where}pass {self.passes}, dedup window {DEDUP_WINDOW:,})",
                  "rows": self.read}]
        rows = self.read
        for step, removed in self.removed.items():
            rows -= removed
            steps.append({"step": step, "removed": removed, "rows": rows})
        self.cleaning[:] = steps


class DedupWindow:
    """Membership of the last `capacity` distinct keys (8-byte hashes), oldest forgotten first."""

    def __init__(self, capacity: int):
        self.capacity, self.keys, self.order = capacity, set(), deque()

    def add(self, key: str) -> bool:
        """Remember `key`; False when it is already remembered (a duplicate)."""
        short = int(key[:16], 16)
        if short in self.keys:
            return False
        self.keys.add(short)
        self.order.append(short)
        if len(self.order) > self.capacity:
            self.keys.discard(self.order.popleft())
        return True


# Reading --------------------------------------------------------------------------------------------
def _raw_stream(cfg):
    """The training split as a `datasets` IterableDataset of the file's (or Hub's) rows."""
    from datasets import IterableDataset, load_dataset

    if cfg.dataset:
        try:
            return load_dataset(cfg.dataset, cfg.config, split=cfg.train_split, streaming=True)
        except Exception as err:
            raise HfkitError(f"data.dataset: cannot stream {cfg.dataset!r} split {cfg.train_split!r} "
                             f"({first_line(err)})") from None
    path = Path(cfg.train_file)
    builder = data.check_file(path, "data.train_file", cfg.file_type)
    if builder == "json":
        return IterableDataset.from_generator(json_rows, gen_kwargs={"path": str(path)})
    options = data.csv_as_text(path) if builder == "csv" else {}
    return load_dataset(builder, data_files=str(path), split="train", streaming=True, **options)


def json_rows(path: str) -> Iterator[dict]:
    """JSON Lines, read one line at a time. A file that is not JSON Lines (an array, a document over
    several lines, SQuAD's nested layout) is read whole by the in-memory reader."""
    if not _is_json_lines(path):
        yield from json_files.json_records(path, None)
        return
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise HfkitError(f"data.train_file: {path} line {number} is not valid JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise HfkitError(f"{path}: line {number} is {type(record).__name__}, not a JSON object")
            yield record


def _is_json_lines(path: str) -> bool:
    """Is the first non-blank line one whole JSON object (and not SQuAD's {"data": [...]})?"""
    with open(path, encoding="utf-8-sig") as f:
        line = next((text for text in f if text.strip()), "")
    try:
        first = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(first, dict) and not json_files.is_squad(first)


def _has_split(cfg, split: str) -> bool:
    """Does the recipe name an evaluation split (a file, or a split the Hub dataset has)?"""
    if not cfg.dataset:
        return bool(cfg.validation_file if split == "validation" else cfg.test_file)
    from datasets import get_dataset_split_names

    try:
        return _hub_split(cfg, split) in get_dataset_split_names(cfg.dataset, cfg.config)
    except Exception as err:
        raise HfkitError(f"data.dataset: cannot read the splits of {cfg.dataset!r} ({first_line(err)})") from None


def _hub_split(cfg, split: str) -> str:
    return cfg.validation_split if split == "validation" else cfg.test_split


def _eval_rows(cfg, split: str) -> Dataset:
    """An evaluation split's rows: a file, read whole; a Hub split, its first max_eval_samples rows."""
    if cfg.dataset:
        from datasets import load_dataset

        stream = load_dataset(cfg.dataset, cfg.config, split=_hub_split(cfg, split), streaming=True)
        return Dataset.from_list(list(islice(iter(stream), cfg.max_eval_samples)))
    path = cfg.validation_file if split == "validation" else cfg.test_file
    return data.load_file(Path(path), f"data.{split}_file", file_type=cfg.file_type)
