"""`hfkit data`: what the model will learn from, seen before any training.

It runs the job's own preparation (hfkit.job.prepare: load, clean, filter, deduplicate,
decontaminate, tokenize, with the same `datasets` cache as `hfkit train`) inside
`hfkit.cleaning.recording()`, which keeps what each step removed. No model weights are loaded:
only the tokenizer (a GGUF's alone, saved as its conversion saves it: hfkit.models.tokenizer_path).
Then, per split, the token lengths of prompts and targets before any cut (the task tokenized once
more with its length limits lifted), the languages py3langid identifies, and five training
examples decoded from the very token ids training reads, with the part that carries loss marked.
hfkit.data_html writes it out: data.json, PNG charts and report.html.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit import cleaning, job, models
from hfkit.console import say
from hfkit.schema import Recipe
from hfkit.tasks import IGNORE

UNLIMITED = 1_000_000_000  # a length limit no example reaches: the lengths before any cut
EXAMPLES_SHOWN = 5
TEXT_CUT = 600  # characters of a removed or matched row shown


@dataclass
class DataReport:
    """Everything `hfkit data` shows; `as_json()` is data.json."""

    name: str
    describe: dict[str, Any]  # task, format, model, dataset: as the run record says them
    cleaning: dict[str, list[dict]]  # as metrics.json's data.cleaning
    preparation: dict[str, dict]  # as metrics.json's data.preparation
    removed: dict[str, dict] = field(default_factory=dict)  # step -> {removed, reasons, examples}
    duplicates: dict[str, list[dict]] = field(default_factory=dict)  # dedup / near_dedup -> biggest clusters
    contamination: list[dict] = field(default_factory=list)  # every training row that matched an eval row
    lengths: dict[str, dict[str, Any]] = field(default_factory=dict)  # split -> {limits, prompt: [...], target: [...]}
    languages: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> language -> rows
    examples: list[list[dict]] = field(default_factory=list)  # training examples as segments {text, loss}
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.describe, "cleaning": self.cleaning, "preparation": self.preparation,
                "removed": self.removed, "duplicates": self.duplicates, "contamination": self.contamination,
                "lengths": {split: _length_summary(info) for split, info in self.lengths.items()},
                "languages": self.languages, "examples": self.examples, "notes": self.notes}


def inspect(recipe: Recipe) -> DataReport:
    """Prepare the recipe's data exactly as `hfkit train` does and gather what it did."""
    task = job.bind(recipe)
    tokenizer_path = models.tokenizer_path(recipe.model)
    job.check_model(recipe, task)
    with cleaning.recording() as findings:
        prepared = job.prepare(recipe, task, tokenizer_path, with_train=True)
        streamed = _read_stream(prepared) if recipe.data.streaming else None
    describe = {key: value for key, value in job.describe(recipe, prepared).items() if key != "data"}
    report = DataReport(recipe.run_name, describe, prepared.report["cleaning"], prepared.report["preparation"])
    report.removed = {step: {"removed": sum(findings.reasons[step].values()), "reasons": dict(findings.reasons[step]),
                             "examples": [_shown(row) for row in rows]} for step, rows in findings.removed.items()}
    report.duplicates = {step: [{"size": c["size"], "rows": [_shown(r) for r in c["rows"]]} for c in clusters]
                         for step, clusters in findings.clusters.items()}
    report.contamination = _matches(findings.contamination, [s for s in prepared.splits if s != "train"])
    splits = dict(prepared.splits)
    if streamed is not None:
        report.notes.append("data.streaming: the training split was read once, as one pass of training reads it; "
                            "its token lengths and languages are not shown (they are for the evaluation splits)")
        splits.pop("train", None)
    fields = task.text_fields()
    for split, ds in splits.items():
        report.lengths[split] = token_lengths(task, prepared.tokenizer, ds)
        report.languages[split] = dict(Counter(cleaning.languages(ds, fields, recipe.data.num_proc)["language"])
                                       .most_common())
    rows = streamed if streamed is not None else prepared.train.dataset
    report.examples = [as_seen(row, prepared.tokenizer) for row in _first(rows, EXAMPLES_SHOWN)]
    return report


def _read_stream(prepared) -> list[dict]:
    """One pass over a training stream (its counts fill in as it is read); its first examples."""
    stream = prepared.train.dataset
    stream.max_passes = 1
    first = []
    for example in stream:
        if len(first) < EXAMPLES_SHOWN:
            first.append(example)
    return first


def _first(rows, count: int) -> list[dict]:
    return [rows[i] for i in range(min(count, len(rows)))]


def token_lengths(task, tokenizer, ds) -> dict[str, Any]:
    """Per example, the prompt's (or source's, or document's) and the target's tokens before any cut,
    and the limits that apply to them. The task tokenizes the split with its limits lifted."""
    recipe, data = task.recipe, task.recipe.data
    if getattr(task, "fmt", None) == "text":
        from hfkit.tasks.common import within_model

        ids = tokenizer(list(ds["text"]))["input_ids"]
        return {"limits": {"data.block_size": within_model(data.block_size, 1024, tokenizer)},
                "prompt": [len(i) + 1 for i in ids], "prompt_label": "document tokens (with EOS)"}
    if not task.generates:  # extractive QA: question + context in windows of max_seq_length
        encoded = tokenizer(list(ds["question"]), list(ds["context"]))["input_ids"]
        return {"limits": {"qa.max_seq_length": recipe.qa.max_seq_length},
                "prompt": [len(i) for i in encoded], "prompt_label": "question + context tokens"}
    lifted = recipe.model_copy(update={"data": data.model_copy(update={
        "max_length": UNLIMITED, "max_source_length": UNLIMITED, "max_target_length": UNLIMITED, "packing": "none"})})
    tokenized = type(task)(lifted, task.encoder_decoder).tokenize(ds, tokenizer, "lengths").dataset
    if task.encoder_decoder:
        from hfkit.tasks.seq2seq import source_length

        return {"limits": {"data.max_source_length": source_length(recipe, tokenizer),
                           "data.max_target_length": data.max_target_length},
                "prompt": [len(i) for i in tokenized["input_ids"]], "prompt_label": "source tokens",
                "target": [len(i) for i in tokenized["labels"]], "target_label": "target tokens"}
    from hfkit.tasks.decoder import max_length

    labels = tokenized["labels"]
    targets = [sum(label != IGNORE for label in row) for row in labels]
    return {"limits": {"data.max_length": max_length(recipe, tokenizer)},
            "prompt": [len(row) - target for row, target in zip(labels, targets)], "prompt_label": "prompt tokens",
            "target": targets, "target_label": "target tokens (with EOS)"}


def as_seen(row: dict, tokenizer) -> list[dict]:
    """A training example decoded from its token ids, in runs of {text, loss}: `loss` is true where
    the token is a training target (labels not -100), false where it is context only."""
    ids = list(row["input_ids"])
    labels = row.get("labels")
    if labels is None and "start_positions" in row:  # extractive QA: the answer span is the target
        start, end = row["start_positions"], row["end_positions"]
        trained = [start <= i <= end and start > 0 for i in range(len(ids))]
        return _runs(ids, trained, tokenizer)
    labels = list(labels)
    if len(labels) != len(ids):  # encoder-decoder: the encoder reads the source, the decoder learns the labels
        return [{"text": tokenizer.decode(ids), "loss": False, "part": "encoder input"},
                {"text": tokenizer.decode([t for t in labels if t != IGNORE]), "loss": True, "part": "labels"}]
    return _runs(ids, [label != IGNORE for label in labels], tokenizer)


def _runs(ids: list[int], trained: list[bool], tokenizer) -> list[dict]:
    runs, start = [], 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or trained[i] != trained[start]:
            runs.append({"text": tokenizer.decode(ids[start:i]), "loss": bool(trained[start])})
            start = i
    return runs


def _shown(row: dict) -> dict:
    """A data row for the report: text fields cut to TEXT_CUT characters, chat messages as text."""
    shown = {}
    for key, value in row.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and "content" in value[0]:
            value = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
        if isinstance(value, str) and len(value) > TEXT_CUT:
            value = value[:TEXT_CUT] + f"… ({len(value):,} characters)"
        shown[key] = value
    return shown


def _matches(found: list[dict], eval_splits: list[str]) -> list[dict]:
    return [{"train_row": m["train_row"], "train": _shown(m["train"]), "eval_split": eval_splits[m["eval_set"]],
             "eval_row": m["eval_row"], "eval": _shown(m["eval"])} for m in found]


def _length_summary(info: dict[str, Any]) -> dict[str, Any]:
    """data.json's view of a split's lengths: the limits, then per part its statistics and what passes them."""
    summary = {"limits": info["limits"]}
    for part in ("prompt", "target"):
        values = sorted(info.get(part) or [])
        if not values:
            continue
        summary[part] = {"label": info[f"{part}_label"], "examples": len(values), "min": values[0], "max": values[-1],
                         "mean": round(sum(values) / len(values), 1), "median": values[len(values) // 2],
                         "p95": values[min(len(values) - 1, int(0.95 * len(values)))]}
    return summary


def summary_lines(report: DataReport, written: list[Path]) -> list[str]:
    """The terminal summary after the preparation table."""
    lines = []
    for step, info in report.removed.items():
        reasons = ", ".join(f"{why} {n}" for why, n in Counter(info["reasons"]).most_common(3))
        lines.append(f"{step}: removed {info['removed']}" + (f" ({reasons})" if reasons else ""))
    for step, clusters in report.duplicates.items():
        if clusters:
            lines.append(f"{step}: largest cluster {clusters[0]['size']} rows, {len(clusters)} shown")
    lines.append(f"contamination: {len(report.contamination)} training row(s) matched an evaluation row")
    for split, languages in report.languages.items():
        top = ", ".join(f"{code or '?'} {n}" for code, n in list(languages.items())[:4])
        lines.append(f"languages ({split}): {top}")
    lines += report.notes
    lines += [f"wrote {path}" for path in written]
    return lines


def show(report: DataReport, written: list[Path]) -> None:
    from hfkit.training import preparation_table

    say(preparation_table({"cleaning": report.cleaning, "preparation": report.preparation}), important=True)
    for line in summary_lines(report, written):
        if line.startswith("wrote"):
            print(line)  # a path on one line, however narrow the terminal
        else:
            say(line)
