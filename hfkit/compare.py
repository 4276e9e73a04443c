"""`hfkit compare`: one row per run, across runs and tasks, as a table, markdown, CSV, JSON or HTML.

Each row: task, model, method, dataset, steps, train time, samples/s, peak memory, trainable
parameters, and for every metric baseline -> final and the change. Rows are grouped by task
(metrics differ between tasks). A run without scores says why in its status column.
"""

from __future__ import annotations

import csv
import glob
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hfkit import runs
from hfkit.errors import HfkitError
from hfkit.record import read_record

COLUMNS = ("run", "status", "task", "model", "method", "dataset", "eval_examples", "steps", "train_s", "samples_per_s",
           "peak_rss_mb", "trainable_params")


@dataclass
class RunSummary:
    path: Path
    info: dict[str, Any]  # the COLUMNS
    metrics: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (baseline, final)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)

    @property
    def task(self) -> str:
        return self.info.get("task") or "unknown"


def find_runs(patterns: list[str]) -> list[Path]:
    """Run folders named by paths or globs; a folder of runs (runs/) stands for every run in it."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).exists() else [])
        if not matches:
            raise HfkitError(f"no run folder matches {pattern!r}")
        for match in map(Path, matches):
            if runs.is_run_dir(match):
                found.append(match)
            elif match.is_dir():  # not hidden ones: a run being replaced (--overwrite) is staged in .NAME.new-*
                found += sorted(p for p in match.iterdir() if runs.is_run_dir(p) and not p.name.startswith("."))
    if not found:
        raise HfkitError(f"no run folders (folders with {runs.RECIPE}) in: {', '.join(patterns)}")
    return list(dict.fromkeys(found))


def summarize(run_dir: Path) -> RunSummary:
    """What compare shows of one run, read through its record; a run without a readable record
    still gets a row that says why it is empty."""
    recipe = _read_yaml(run_dir / runs.RECIPE)
    try:
        record = read_record(run_dir)
    except HfkitError as err:
        record, why = None, str(err).split(": ", 1)[-1]
    info = {"run": run_dir.name, "task": recipe.get("task"), "model": (recipe.get("model") or {}).get("name_or_path"),
            "method": (recipe.get("peft") or {}).get("method")}
    summary = RunSummary(run_dir, info)
    if record is None:
        info["status"] = f"no scores: {why}"
        return summary
    train = record.train
    info.update({
        "status": record.status + (f": {record.error}" if record.error else ""),
        "task": record.task or info["task"],
        "model": record.model or info["model"],
        "method": "full" if record.method == "none" else (record.method or info["method"]),
        "dataset": record.dataset,
        "eval_examples": record.eval_examples,
        "steps": train.steps if train else None,
        "train_s": train.runtime_s if train else None,
        "samples_per_s": train.samples_per_second if train else None,
        "peak_rss_mb": record.peak_memory_mb.get("rss"),
        "trainable_params": record.parameters.get("trainable"),
    })
    baseline = record.baseline.metrics if record.baseline else {}
    final = record.final.metrics if record.final else {}
    for name in dict.fromkeys([*baseline, *final]):
        summary.metrics[name] = (baseline.get(name), final.get(name))
    summary.losses = [(entry["step"], entry["loss"]) for entry in record.log_history
                      if "loss" in entry and "step" in entry]
    return summary


def by_task(summaries: list[RunSummary]) -> dict[str, list[RunSummary]]:
    groups: dict[str, list[RunSummary]] = {}
    for summary in summaries:
        groups.setdefault(summary.task, []).append(summary)
    return dict(sorted(groups.items()))


def metric_names(summaries: list[RunSummary]) -> list[str]:
    return list(dict.fromkeys(name for s in summaries for name in s.metrics))


def flat_rows(summaries: list[RunSummary]) -> list[dict[str, Any]]:
    """One dict per run: the columns, then <metric>_baseline/_final/_delta for every metric seen."""
    names = metric_names(summaries)
    rows = []
    for summary in summaries:
        row = dict(summary.info)
        for name in names:
            before, after = summary.metrics.get(name, (None, None))
            row[f"{name}_baseline"], row[f"{name}_final"], row[f"{name}_delta"] = before, after, _delta(before, after)
        rows.append(row)
    return rows


def to_csv(summaries: list[RunSummary]) -> str:
    rows = flat_rows(summaries)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def to_json(summaries: list[RunSummary]) -> str:
    return json.dumps([{**s.info, "metrics": {name: {"baseline": b, "final": f, "delta": _delta(b, f)}
                                              for name, (b, f) in s.metrics.items()}} for s in summaries], indent=2)


def task_table(group: list[RunSummary]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of one task's table; a metric cell reads `baseline → final (change)`."""
    names = metric_names(group)
    header = [*COLUMNS, *names]
    cells = [[_cell(s.info.get(column)) for column in COLUMNS] + [_metric_cell(*s.metrics.get(n, (None, None)))
                                                                  for n in names] for s in group]
    return header, cells


def to_markdown(summaries: list[RunSummary]) -> str:
    parts = []
    for task, group in by_task(summaries).items():
        header, cells = task_table(group)
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        parts.append(f"### {task}\n\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def to_html(summaries: list[RunSummary], images: dict[str, str] | None = None) -> str:
    """A self-contained page: one table per task and the charts inlined (viewable offline)."""
    sections = []
    for task, group in by_task(summaries).items():
        header, cells = task_table(group)
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in cells)
        sections.append(f"<h2>{html.escape(task)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    for title, data in (images or {}).items():
        sections.append(f'<h2>{html.escape(title)}</h2>\n<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>hfkit compare</title>"
            f"<style>{style}</style></head><body>\n<h1>hfkit compare: {len(summaries)} runs</h1>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def rich_tables(summaries: list[RunSummary]) -> list:
    from rich.table import Table

    tables = []
    for task, group in by_task(summaries).items():
        header, cells = task_table(group)
        table = Table(title=f"{task}: baseline → final (change)")
        for name in header:
            table.add_column(name, justify="left" if name in ("run", "task", "model", "method", "dataset") else "right",
                             no_wrap=True)
        for row in cells:
            table.add_row(*row)
        tables.append(table)
    return tables


def write_report(summaries: list[RunSummary], out_dir: Path) -> list[Path]:
    """compare.csv, compare.md, compare.json, PNG charts and report.html into `out_dir`."""
    import base64

    from hfkit.charts import loss_chart, metric_charts

    out_dir.mkdir(parents=True, exist_ok=True)
    runs.write_text(out_dir / "compare.csv", to_csv(summaries))
    runs.write_text(out_dir / "compare.md", to_markdown(summaries))
    runs.write_text(out_dir / "compare.json", to_json(summaries) + "\n")
    charts = metric_charts(by_task(summaries), out_dir)
    losses = loss_chart(summaries, out_dir / "loss_curves.png")
    charts += [losses] if losses else []
    images = {chart.stem.replace("_", " "): base64.b64encode(chart.read_bytes()).decode() for chart in charts}
    runs.write_text(out_dir / "report.html", to_html(summaries, images))
    return [out_dir / name for name in ("compare.csv", "compare.md", "compare.json")] + charts + [out_dir / "report.html"]


def _delta(before, after):
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after))
    return after - before if numbers else None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1000 else f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{value:,}" if isinstance(value, int) else str(value)


def _metric_cell(before, after) -> str:
    if before is None and after is None:
        return ""
    if before is None or after is None:
        return _number(after if before is None else before)
    change = _delta(before, after)
    return f"{_number(before)} → {_number(after)} ({change:+.4g})" if change is not None else f"{before} → {after}"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}
