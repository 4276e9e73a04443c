"""The side files' schemas, each with its version, as the run record's (hfkit.record): a row of
predictions*.jsonl, a decoding sweep's sweep.json, and `hfkit compare`'s compare.json.

hfkit writes each through its model and reads it back through it. sweep.json and compare.json carry
their `schema_version`; a predictions file's version is kept where it is named. Files written
before they had a version are read as version 1 (the same fields, unversioned); a file from a
newer hfkit keeps the keys this one does not know (the models are open).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hfkit.redaction import redact_value
from hfkit.runs import write_text

PREDICTIONS_VERSION = 2
SWEEP_VERSION = 2
COMPARE_VERSION = 1
SWEEP = "sweep.json"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # a newer hfkit may add keys; an older one keeps them


# --- predictions*.jsonl ----------------------------------------------------------------------------------------


class PredictionRow(_Open):
    """One eval example as scored: what the model read and wrote, the reference, its own scores.

    A file's rows share one version, kept where the file is named (`predictions_version` of the
    run record's evaluation, or of a sweep's strategy), not on every row."""

    id: str | int | None = None  # None: written before hfkit gave every example an id (nothing joins it)
    input: Any = None  # the source text (a prompt's input, QA's question and context)
    reference: Any = None  # a text, a list of texts, or SQuAD's {id, answers}
    prediction: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)  # the example's own scores, per key (None: NaN)
    metric_prediction: dict[str, Any] | None = None  # SQuAD: the metric's own input {id, prediction_text, ...}

    def data(self) -> dict[str, Any]:
        """The JSON object it is written as (metric_prediction only where there is one)."""
        return self.model_dump(exclude={"metric_prediction"} if self.metric_prediction is None else set())

    def line(self) -> str:
        return json.dumps(self.data(), ensure_ascii=False)

    def __eq__(self, other):  # a row equals the JSON object it is written as, too
        return self.data() == other if isinstance(other, dict) else super().__eq__(other)

    __hash__ = None


def write_predictions(path: Path, rows: list[PredictionRow]) -> int:
    """predictions*.jsonl, written whole (temporary file, then rename); returns the rows' version."""
    write_text(path, "".join(row.line() + "\n" for row in rows))
    return PREDICTIONS_VERSION


def read_prediction_lines(text: str) -> list[PredictionRow]:
    """The rows of a predictions file's text; a line that is not a JSON object raises ValueError
    naming the line."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as err:
            raise ValueError(f"line {number} is not valid JSON ({getattr(err, 'msg', err)})") from None
        if not isinstance(data, dict):
            raise ValueError(f"line {number} is not a JSON object")
        rows.append(PredictionRow.model_validate(data))
    return rows


# --- sweep.json ------------------------------------------------------------------------------------------------


class SweepStrategy(_Open):
    """One decoding strategy of a sweep: its effective settings, scores and speed."""

    name: str
    settings: dict[str, Any] = Field(default_factory=dict)  # the effective generation settings
    sampled: bool = False
    seed: int | None = None  # the seed sampling drew with (None: not sampled)
    metrics: dict[str, Any] = Field(default_factory=dict)
    intervals: dict[str, list[float]] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    examples: int | None = None
    generation_s: float | None = None
    examples_per_s: float | None = None
    predictions: str | None = None  # its predictions-<strategy>.jsonl
    predictions_version: int | None = None  # of those rows (None: written before rows had one, version 1)


class SweepRecord(_Open):
    """sweep.json: every strategy scored with the same weights on the same examples."""

    schema_version: int = SWEEP_VERSION
    kind: Literal["sweep"] = "sweep"
    status: str = "running"  # running, complete, failed, interrupted
    error: str | None = None
    target: str | None = None  # the run folder or recipe swept
    method: str | None = None  # the run's (lora, none) or zero-shot
    seed: int | None = None
    metric_args: dict[str, Any] = Field(default_factory=dict)
    task: str | None = None
    model: str | None = None
    dataset: str | None = None
    eval_split: str | None = None
    eval_examples: int | None = None
    metric_names: list[str] = Field(default_factory=list)
    loss: dict[str, Any] = Field(default_factory=dict)  # eval_loss (and perplexity), computed once
    strategies: list[SweepStrategy] = Field(default_factory=list)

    def write(self, folder: Path) -> None:
        """sweep.json, written whole, secrets redacted (an error message may quote a token)."""
        data = redact_value(json.loads(self.model_dump_json()))  # pydantic's JSON: NaN/inf as null
        write_text(Path(folder) / SWEEP, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_sweep(folder: Path) -> SweepRecord:
    """A sweep folder's sweep.json (ValueError or OSError when it cannot be read)."""
    data = json.loads((Path(folder) / SWEEP).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{SWEEP} is not a JSON object")
    return SweepRecord.model_validate({"schema_version": 1, **data})


# --- compare.json ----------------------------------------------------------------------------------------------


class ComparedMetric(_Open):
    """One score of one run in the comparison: baseline, final, their change and its tests."""

    baseline: Any = None
    final: Any = None
    delta: float | None = None
    baseline_interval: list[float | None] | None = None
    final_interval: list[float | None] | None = None
    lower_is_better: bool = False
    vs_baseline: dict[str, Any] | None = None  # the paired test of the final model against its baseline
    vs_reference: dict[str, Any] | None = None  # against the first run given on the same eval set


class ComparedRun(_Open):
    """One run as compared: its table columns (run, status, task, model, ...), then its metrics."""

    run: str
    path: str
    zero_shot: bool = False
    reference: str | None = None  # the run it was paired with
    metrics: dict[str, ComparedMetric] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)


class ComparedSweep(SweepRecord):
    name: str
    path: str
    vs_first: dict[str, dict[str, Any]] = Field(default_factory=dict)  # strategy -> {key: paired test}
    notes: list[str] = Field(default_factory=list)


class CompareSummary(_Open):
    """compare.json: every run, sweep and eval set of one `hfkit compare`."""

    schema_version: int = COMPARE_VERSION
    runs: list[ComparedRun] = Field(default_factory=list)
    sweeps: list[ComparedSweep] = Field(default_factory=list)
    eval_sets: dict[str, list[str]] = Field(default_factory=dict)  # "E1" -> the runs scored on it
    studies: list[dict[str, Any]] = Field(default_factory=list)  # each study's study.json (hfkit.study_record)
    alpha: float = 0.05
