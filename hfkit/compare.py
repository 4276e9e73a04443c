"""`hfkit compare`: gather runs, `hfkit eval` results and decoding sweeps into one comparison.

Each run is read through its record. Runs on the same eval set (the same example ids and
references) are paired: each with the first of them given (the reference), and every run's final
model with its own baseline; runs on different eval sets never are (hfkit.significance). How the
comparison is shown: hfkit.tables (terminal, markdown, CSV, JSON), hfkit.report_html, hfkit.charts.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from hfkit import metrics, runs, significance, study_record, sweep_table
from hfkit.errors import HfkitError
from hfkit.record import Evaluation, RunRecord, read_record
from hfkit.results import ResultRow, result_rows
from hfkit.significance import NotPaired, Predictions, read_predictions

COLUMNS = ("run", "status", "task", "model", "method", "dataset", "eval_set", "eval_examples", "steps", "train_s",
           "samples_per_s", "peak_rss_mb", "trainable_params")
EVAL_PREFIX, SWEEP_PREFIX = "eval-", "sweep-"  # what `hfkit eval RUN` and `hfkit eval RUN --decode` write


@dataclass
class RunSummary:
    path: Path
    info: dict[str, Any]  # the COLUMNS
    # The results table (hfkit.results): one row per score key, baseline -> final, as the terminal and
    # the model card show a run; `row(key)` adds the paired test once `pair` has run it
    rows: dict[str, ResultRow] = field(default_factory=dict)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    record: RunRecord | None = None
    metric_args: dict[str, dict] = field(default_factory=dict)  # the recipe's eval.metric_args
    # Paired tests, filled by `pair`: {metric key: paired_bootstrap's result + significant}
    vs_baseline: dict[str, dict] = field(default_factory=dict)  # this run's final model against its baseline
    vs_reference: dict[str, dict] = field(default_factory=dict)  # this run against its eval set's reference run
    reference: str | None = None  # the run it was paired with
    notes: list[str] = field(default_factory=list)  # why a test is missing

    @property
    def name(self) -> str:
        return self.info["run"]

    @property
    def metrics(self) -> dict[str, tuple[Any, Any]]:
        """score key -> (baseline, final)"""
        return {key: (row.baseline, row.final) for key, row in self.rows.items()}

    @property
    def intervals(self) -> dict[str, tuple[Any, Any]]:
        """score key -> (the baseline's 95% interval, the final's)"""
        return {key: (row.baseline_interval, row.final_interval) for key, row in self.rows.items()}

    def row(self, key: str) -> ResultRow:
        """The results-table row of `key`, with the final model's paired test against its baseline."""
        return replace(self.rows.get(key) or ResultRow(key), test=self.vs_baseline.get(key))

    @property
    def task(self) -> str:
        return self.info.get("task") or "unknown"

    @property
    def zero_shot(self) -> bool:
        """Scored by `hfkit eval RECIPE`: the untrained model, a baseline (its scores are `baseline`)."""
        return self.record is not None and self.record.method == "zero-shot"

    @property
    def result(self) -> Evaluation | None:
        """The scores this run stands for: the final model's, or a zero-shot run's baseline."""
        if self.record is None:
            return None
        return self.record.baseline if self.zero_shot else self.record.final

    def predictions(self, stage: str) -> Predictions | None:
        """The rows of stage 'result' or 'baseline' (a zero-shot run has no separate baseline)."""
        evaluation = self.result if stage == "result" else (None if self.zero_shot or not self.record
                                                            else self.record.baseline)
        if evaluation is None or not evaluation.predictions:
            return None
        try:
            return read_predictions(self.path / evaluation.predictions)
        except NotPaired as why:  # a broken line, rows without ids: said once, in the pairing notes
            if f"not paired: {why}" not in self.notes:
                self.notes.append(f"not paired: {why}")
            return None


@dataclass
class Comparison:
    runs: list[RunSummary]
    sweeps: list[sweep_table.SweepSummary] = field(default_factory=list)
    eval_sets: dict[str, list[str]] = field(default_factory=dict)  # "E1" -> the runs scored on it, in order
    studies: list[study_record.StudyRecord] = field(default_factory=list)  # study folders given (hfkit study)

    def by_task(self) -> dict[str, list[RunSummary]]:
        return by_task(self.runs)


def collect(patterns: list[str], resamples: int = significance.RESAMPLES) -> Comparison:
    """Everything `patterns` names, read and paired (`resamples` 0: no paired tests). A study folder
    brings its study.json and its trials' run folders."""
    studies = [study_record.read(p) for p in find_studies(patterns)]
    try:
        paths = find_runs(patterns)
    except HfkitError:
        if not studies:
            raise
        paths = []  # a study whose trials have not written a run folder yet
    comparison = Comparison([summarize(p) for p in paths if not sweep_table.is_sweep_dir(p)],
                            [sweep_table.summarize(p) for p in paths if sweep_table.is_sweep_dir(p)], studies=studies)
    pair(comparison, resamples)
    return comparison


def find_runs(patterns: list[str]) -> list[Path]:
    """Run folders named by paths or globs; a folder of runs (runs/) stands for every run in it.
    A run brings the `eval-*/` and `sweep-*/` folders inside it; hidden folders (a run being
    replaced with --overwrite is staged in .NAME.new-*) are left out."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
        if not matches:
            raise HfkitError(f"no run folder matches {pattern!r}")
        for match in map(Path, matches):
            if _is_entry(match):
                found += [match, *_nested(match)]
            elif match.is_dir():
                for child in sorted(p for p in match.iterdir() if _is_entry(p) and not p.name.startswith(".")):
                    found += [child, *_nested(child)]
    if not found:
        raise HfkitError(f"no run folders (folders with {runs.RECIPE}) in: {', '.join(patterns)}")
    return list(dict.fromkeys(found))


def find_studies(patterns: list[str]) -> list[Path]:
    """The study folders (with study.json) among the paths and globs given."""
    found = [Path(match) for pattern in patterns for match in (sorted(glob.glob(pattern)) or [pattern])]
    return list(dict.fromkeys(path for path in found if study_record.is_study_dir(path)))


def _is_entry(path: Path) -> bool:
    return runs.is_run_dir(path) or sweep_table.is_sweep_dir(path) or is_eval_dir(path)


def is_eval_dir(path: Path) -> bool:
    """RUN/eval-<UTC>/: `hfkit eval RUN`'s scores (a record, no recipe: the run's own applies)."""
    return (path.name.startswith(EVAL_PREFIX) and (path / runs.METRICS).is_file()
            and runs.is_run_dir(path.parent))


def _nested(run_dir: Path) -> list[Path]:
    if not runs.is_run_dir(run_dir):
        return []
    return sorted(p for p in run_dir.iterdir() if p.is_dir() and (is_eval_dir(p) or (
        p.name.startswith(SWEEP_PREFIX) and sweep_table.is_sweep_dir(p))))


def display_name(path: Path) -> str:
    """A run's folder name; a folder inside a run is shown as RUN/eval-..."""
    return f"{path.parent.name}/{path.name}" if is_eval_dir(path) or (
        sweep_table.is_sweep_dir(path) and runs.is_run_dir(path.parent)) else path.name


def summarize(run_dir: Path) -> RunSummary:
    """What compare shows of one run, read through its record; a run without a readable record
    still gets a row that says why it is empty."""
    recipe = _read_yaml((run_dir.parent if is_eval_dir(run_dir) else run_dir) / runs.RECIPE)  # eval-*: the run's
    try:
        record = read_record(run_dir)
    except HfkitError as err:
        record, why = None, str(err).split(": ", 1)[-1]
    info = {"run": display_name(run_dir), "task": recipe.get("task"),
            "model": (recipe.get("model") or {}).get("name_or_path"), "method": (recipe.get("peft") or {}).get("method")}
    summary = RunSummary(run_dir, info, metric_args=(recipe.get("eval") or {}).get("metric_args") or {})
    if record is None:
        info["status"] = f"no scores: {why}"
        return summary
    summary.record, train = record, record.train
    for name in record.metric_names:  # a plug-in's spec (its keys' direction and scale), when it imports here
        metrics.find(name)
    method = "full" if record.method == "none" else (record.method or info["method"])
    info.update({
        "status": record.status + (f": {record.error}" if record.error else ""),
        "task": record.task or info["task"],
        "model": record.model or info["model"],
        "method": "zero-shot (baseline)" if method == "zero-shot" else method,
        "dataset": f"train {record.dataset}, eval {record.eval_data}" if record.eval_data else record.dataset,
        "eval_examples": record.eval_examples,
        "steps": train.steps if train else None,
        "train_s": train.runtime_s if train else None,
        "samples_per_s": train.samples_per_second if train else None,
        "peak_rss_mb": record.peak_memory_mb.get("rss"),
        "trainable_params": record.parameters.get("trainable"),
    })
    baseline = record.baseline or Evaluation()
    final = record.final or Evaluation()
    if info["task"] == "qa" and (recipe.get("qa") or {}).get("mode", "extractive") == "extractive":
        for scored in (baseline, final):  # written before the span loss was named apart from a token loss
            if "eval_loss" in scored.metrics:
                scored.metrics["eval_span_loss"] = scored.metrics.pop("eval_loss")
    summary.rows = {row.key: row for row in result_rows(baseline, final, record.metric_names)}
    summary.losses = [(entry["step"], entry["loss"]) for entry in record.log_history
                      if "loss" in entry and "step" in entry]
    return summary


def pair(comparison: Comparison, resamples: int) -> None:
    """Label eval sets (E1, E2, ... in the order given) and run the paired tests.

    The reference of an eval set is its first run given: every later run on it is tested against
    that one, and each run's final model against its own baseline."""
    groups: dict[str, list[tuple[RunSummary, Predictions]]] = {}
    labels: dict[str, str] = {}
    for summary in comparison.runs:
        result = summary.predictions("result")
        if result is None:
            summary.info["eval_set"] = None
            said = any(note.startswith("not paired") for note in summary.notes)
            if summary.record is not None and summary.result is not None and not said:
                summary.notes.append("not paired: no predictions file")
            continue
        label = labels.setdefault(result.eval_set, f"E{len(labels) + 1}")
        summary.info["eval_set"] = label
        groups.setdefault(label, []).append((summary, result))
        baseline = summary.predictions("baseline")
        if resamples and baseline is not None:
            summary.vs_baseline = _tested(summary, "final vs baseline", baseline, result, summary.metric_args, resamples)
    for label, members in groups.items():
        comparison.eval_sets[label] = [summary.name for summary, _ in members]
        (reference, reference_rows), others = members[0], members[1:]
        for summary, rows in others:
            summary.reference = reference.name
            if resamples:
                summary.vs_reference = _tested(summary, f"vs {reference.name}", reference_rows, rows,
                                               _shared_args(reference, summary), resamples,
                                               _shared_names(reference, summary))
    for entry in comparison.sweeps:
        if resamples:
            sweep_table.pair_strategies(entry, resamples)


def _tested(summary: RunSummary, what: str, a: Predictions, b: Predictions, metric_args: dict | None,
            resamples: int, names: list[str] | None = None) -> dict[str, dict]:
    if metric_args is None:
        summary.notes.append(f"{what}: not paired: the two runs use different eval.metric_args")
        return {}
    try:
        return significance.paired_test(a, b, names if names is not None else summary.record.metric_names,
                                        metric_args, resamples)
    except NotPaired as why:
        summary.notes.append(f"{what}: not paired: {why}")
        return {}


def _shared_names(a: RunSummary, b: RunSummary) -> list[str]:
    theirs = set(a.record.metric_names if a.record else [])
    return [name for name in (b.record.metric_names if b.record else []) if name in theirs]


def _shared_args(a: RunSummary, b: RunSummary) -> dict | None:
    """The metric options both runs were scored with; None when they differ (their scores do not compare)."""
    names = _shared_names(a, b)
    if any((a.metric_args or {}).get(n) != (b.metric_args or {}).get(n) for n in names):
        return None
    return b.metric_args


def by_task(summaries: list[RunSummary]) -> dict[str, list[RunSummary]]:
    groups: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        groups.setdefault(summary.task, []).append(summary)
    return dict(sorted(groups.items()))


LOSSES = ("eval_loss", "eval_span_loss", "perplexity")  # a token loss and extractive QA's are different columns


def metric_names(summaries: list[RunSummary]) -> list[str]:
    """Every metric of the runs, the task's own first (what people compare), losses and perplexity last."""
    names = list(dict.fromkeys(name for s in summaries for name in s.metrics))
    return sorted(names, key=lambda name: name in LOSSES)


def headline_keys(summary: RunSummary) -> list[str]:
    """The scores a run is shown by in the cross-task overview: each of its metrics' main keys
    (BLEU, chrF, ROUGE-L, SQuAD EM and F1, ...), or perplexity for a run scored by loss only."""
    names = summary.record.metric_names if summary.record else []
    overview = [spec.overview if (spec := metrics.find(name)) else (name.split("/")[-1],) for name in names]
    keys = [key for chosen in overview for key in chosen if key in summary.metrics]
    return keys or [key for key in ("perplexity", "eval_loss", "eval_span_loss") if key in summary.metrics][:1]


def delta(before, after):
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
    return after - before if numbers else None


def relative_change(before, after) -> float | None:
    """(final - baseline) / |baseline| in %, with the sign of the change itself (a loss that rose
    is +, see `direction` for better or worse); None without both numbers, +-inf from a baseline of 0."""
    change = delta(before, after)
    if change is None:
        return None
    if before == 0:
        return 0.0 if change == 0 else float("inf") if change > 0 else float("-inf")
    return 100.0 * change / abs(before)


def direction(key: str, before, after) -> str:
    """'better', 'worse' or 'same' in the metric's own direction (loss, perplexity, TER: lower is
    better); '' without both numbers."""
    change = delta(before, after)
    if change is None:
        return ""
    if change == 0:
        return "same"
    return "better" if (change < 0) == metrics.lower_is_better(key) else "worse"


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
