"""The run record: metrics.json's schema, its one writer and its one reader.

Training, the baseline, an interruption, a failure and `hfkit eval` all write a `RunRecord`;
compare, cards and hub read one. Records written before schema_version 2 (hfkit 0.1: flat
`baseline`/`final` metric dicts, `details` beside them) are migrated when read.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hfkit.errors import HfkitError, first_line
from hfkit.redaction import redact_value
from hfkit.runs import METRICS, write_text

SCHEMA_VERSION = 2

Status = Literal["running", "complete", "interrupted", "failed", "scoring_failed", "evaluated", "pruned"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # a newer hfkit may add keys; an older one keeps them


class Evaluation(_Open):
    """One scoring of one model on the eval split."""

    metrics: dict[str, Any] = Field(default_factory=dict)  # headline numbers (eval_loss, sacrebleu, ...)
    details: dict[str, Any] = Field(default_factory=dict)  # the rest: signatures, settings, brevity penalty
    intervals: dict[str, list[float]] = Field(default_factory=dict)  # metric -> [low, high] (bootstrap)
    examples: int | None = None  # eval examples scored
    loss_examples: int | None = None  # eval examples whose targets are in the loss
    loss_tokens: int | None = None  # target tokens eval_loss is the mean over
    loss_windows: int | None = None  # extractive QA: windows eval_span_loss is the mean over
    dtype: str | None = None  # what the model computed in while scoring
    model_dtype: str | None = None  # what most of the scored weights are stored in (the checkpoint's: float32)
    predictions: str | None = None  # the predictions file in the run folder
    predictions_version: int | None = None  # its rows' schema (hfkit.formats; None: before rows had one, 1)
    step: int | None = None  # training step of the scored weights (the restored best step, when one was restored)


class TrainStats(_Open):
    runtime_s: float | None = None
    samples_per_second: float | None = None
    tokens_per_second: float | None = None
    steps: int | None = None
    train_loss: float | None = None
    train_examples: int | None = None
    resumed_from: str | None = None


class RunRecord(_Open):
    schema_version: int = SCHEMA_VERSION
    kind: Literal["train", "eval"] = "train"
    status: Status = "running"
    error: str | None = None  # the one-line error of a failed run or scoring
    task: str | None = None
    format: str | None = None
    model: str | None = None
    model_family: Literal["encoder-decoder", "decoder-only", "encoder"] | None = None
    method: str | None = None  # lora, none (full fine-tuning), zero-shot
    dataset: str | None = None  # the training data (a file's name, or a Hub dataset)
    eval_data: str | None = None  # the data scored: the eval split's file, Hub split, or what it was held out from
    eval_split: str | None = None
    selection_split: str | None = None  # the split evaluations while training scored (never test)
    eval_examples: int | None = None
    metric_names: list[str] = Field(default_factory=list)
    baseline: Evaluation | None = None
    final: Evaluation | None = None
    train: TrainStats | None = None
    best: dict[str, Any] | None = None  # {step, metric, value, restored} of the best evaluation while training
    notes: list[str] = Field(default_factory=list)  # warnings worth keeping (e.g. overfitting)
    peak_memory_mb: dict[str, float] = Field(default_factory=dict)  # the memory plan's probes excepted
    # resources.memory_gb: the budget, each setting tried (predicted and measured peak), the choice,
    # training's own measured peak and the whole run's (hfkit.memory_plan)
    memory_plan: dict[str, Any] | None = None
    parameters: dict[str, int] = Field(default_factory=dict)  # trainable, total
    model_dtype: str | None = None
    attention: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)  # cleaning and preparation counts per split
    log_history: list[dict[str, Any]] = Field(default_factory=list)

    path: Path | None = Field(None, exclude=True)  # the folder it was read from or written to (not stored)

    @model_validator(mode="before")
    @classmethod
    def _migrate(cls, raw: Any) -> Any:
        """Schema 1 (hfkit 0.1) -> 2: evaluations become objects, `metrics` is renamed."""
        if not isinstance(raw, dict) or raw.get("schema_version", 1) >= 2:
            return raw
        raw = dict(raw)
        details = raw.pop("details", None) or {}
        for stage in ("baseline", "final"):
            if isinstance(raw.get(stage), dict):
                raw[stage] = {"metrics": raw[stage], "details": details.get(stage) or {}}
        if isinstance(raw.get("metrics"), list):
            raw["metric_names"] = raw.pop("metrics")
        if "cleaning" in raw:
            raw["data"] = {"cleaning": raw.pop("cleaning")}
        if raw.get("status") == "training":
            raw["status"] = "running"
        raw["schema_version"] = SCHEMA_VERSION
        return raw

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    @property
    def awaits_scoring(self) -> bool:
        """A training run without final scores that may have its weights saved: its scoring failed or was
        interrupted, or the process died while scoring (the record still says running)."""
        return self.kind == "train" and self.final is None and self.status in (
            "scoring_failed", "running", "failed", "interrupted")

    @property
    def is_encoder_decoder(self) -> bool | None:
        return None if self.model_family is None else self.model_family == "encoder-decoder"

    def write(self, run_dir: Path) -> None:
        """Write metrics.json whole (temporary file, then rename), secrets redacted (an error
        message or a log entry may quote a token or a credentialed URL)."""
        data = redact_value(json.loads(self.model_dump_json()))  # pydantic's JSON: NaN/inf as null
        write_text(Path(run_dir) / METRICS, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def with_best_step(best: dict[str, Any] | None, log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """`best` ({step, metric, value, restored}; {} without one) with its step. Trainer keeps the best
    value but no step when no checkpoints are saved: the step is then the first evaluation in the log
    with that value, and `inferred` says so."""
    best = dict(best or {})
    if best and best.get("step") is None and best.get("metric"):
        steps = [e["step"] for e in log_history if e.get(best["metric"]) == best.get("value") and "step" in e]
        if steps:
            best.update(step=steps[0], inferred=True)
    return best


def read_record(run_dir: Path) -> RunRecord:
    """The run's metrics.json; a missing or corrupt file is a clear error."""
    path = Path(run_dir) / METRICS
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HfkitError(f"{run_dir}: no {METRICS} (the run never got to scoring)") from None
    except (OSError, ValueError) as err:
        raise HfkitError(f"{path}: cannot be read ({first_line(err)}); the file is corrupt") from None
    version = raw.get("schema_version") if isinstance(raw, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise HfkitError(f"{path}: written by a newer hfkit (schema_version {version}; this one reads up to "
                         f"{SCHEMA_VERSION}); upgrade hfkit to read it")
    try:
        record = RunRecord.model_validate(raw)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise HfkitError(f"{path}: not an hfkit run record ({where}: {problem['msg']})") from None
    record.path = Path(run_dir)
    return record


def has_record(run_dir: Path) -> bool:
    return (Path(run_dir) / METRICS).is_file()


@contextmanager
def recording_failure(run_dir: Path, record: RunRecord, is_main: bool):
    """A job that fails leaves `status: failed` and its one-line error in the record (not a blank folder);
    one stopped by Ctrl-C or SIGTERM leaves `status: interrupted` and ends in `Interrupted`."""
    from hfkit.errors import Interrupted, Pruned, stop_signal

    try:
        yield
    except Interrupted:
        raise
    except Pruned as err:  # a study's pruner stopped training: not a failure
        if is_main:
            record.status, record.error, record.log_history = "pruned", str(err), err.log_history
            record.write(run_dir)
        raise
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM before training's own handler (data, model, baseline)
        how, code = stop_signal(stop)
        if is_main and record.status not in ("scoring_failed", "interrupted"):
            record.status = "interrupted"
            record.error = f"stopped by {how} " + ("before training finished" if record.kind == "train" else "while scoring")
            record.write(run_dir)
        again = (f"hfkit train --resume {run_dir} starts it again" if record.kind == "train"
                 else "nothing was scored")
        raise Interrupted(f"stopped by {how}; {run_dir} records it (status {record.status}); {again}", code) from None
    except BaseException as err:
        if is_main and record.status not in ("scoring_failed", "interrupted"):
            record.status = "failed"
            record.error = f"{type(err).__name__}: {first_line(err)}" if not isinstance(err, HfkitError) else first_line(err)
            try:
                record.write(run_dir)
            except OSError:  # a full disk fails this write too: the error that caused it is the one to show
                pass
        raise
