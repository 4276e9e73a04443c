"""A sweep folder as `hfkit compare` reads and shows it: its sweep.json, each strategy paired with the
first one given, and the metric x strategy table (terminal, markdown; the HTML report draws the same
matrix). Running a sweep is hfkit.sweep's; this module loads no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hfkit import runs, significance
from hfkit.console import interval, number
from hfkit.errors import first_line
from hfkit.formats import SWEEP, read_sweep
from hfkit.metrics import lower_is_better


def is_sweep_dir(path: Path) -> bool:
    return path.is_dir() and (path / SWEEP).is_file()


@dataclass
class SweepSummary:
    """A sweep folder as compare shows it; `vs_first`: each later strategy's paired test against the first."""

    path: Path
    name: str
    data: dict[str, Any]
    vs_first: dict[str, dict] = field(default_factory=dict)  # strategy -> {metric key: paired result}
    notes: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return self.data.get("task") or "unknown"

    @property
    def strategies(self) -> list[dict]:
        return self.data.get("strategies") or []


def summarize(path: Path) -> SweepSummary:
    name = f"{path.parent.name}/{path.name}" if runs.is_run_dir(path.parent) else path.name
    try:
        data = read_sweep(path).model_dump()
    except (OSError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        data = {"status": "failed", "error": f"{SWEEP} cannot be read ({first_line(err)})"}
    return SweepSummary(path, name, data)


def pair_strategies(summary: SweepSummary, resamples: int) -> None:
    """Every strategy against the first one given: the same examples, so a paired test."""
    files = []
    for strategy in summary.strategies:
        try:
            files.append(significance.read_predictions(summary.path / strategy.get("predictions", "")))
        except significance.NotPaired as why:
            summary.notes.append(f"{strategy.get('name')}: not paired: {why}")
            files.append(None)
    if not files or files[0] is None:
        return
    for strategy, rows in zip(summary.strategies[1:], files[1:]):
        if rows is None:
            continue
        try:
            summary.vs_first[strategy["name"]] = significance.paired_test(
                files[0], rows, summary.data.get("metric_names") or [], summary.data.get("metric_args"), resamples)
        except significance.NotPaired as why:
            summary.notes.append(f"{strategy['name']}: not paired: {why}")


def describe(strategy: dict) -> str:
    """'greedy', 'beam search (4 beams)' or 'sampled (seed 42): top_k 50, temperature 0.7'."""
    settings = strategy.get("settings") or {}
    if strategy.get("sampled"):
        shown = ", ".join(f"{k} {settings[k]}" for k in ("top_k", "top_p", "temperature") if settings.get(k) is not None)
        return f"sampled (seed {strategy.get('seed')}): {shown}"
    beams = settings.get("num_beams") or 1
    return f"beam search ({beams} beams)" if beams > 1 else "greedy"


def matrix(data: dict, vs_first: dict | None, cell: Callable) -> tuple[list[str], list[tuple[str, list]]]:
    """The sweep's table, metric x strategy: (header, [(row label, cells)]). `cell(key, value,
    interval, test)` renders one cell: `key` the metric (None in the other rows), `test` that
    strategy's paired test against the first (or None)."""
    listed = data.get("strategies") or []
    header = ["metric", *(s["name"] for s in listed)]
    keys = list(dict.fromkeys(key for s in listed for key in s.get("metrics", {})))
    rows: list[tuple[str, list]] = []
    names = data.get("metric_names") or ()
    for key in keys:
        label = f"{key} (lower is better)" if lower_is_better(key, names) else key
        rows.append((label, [cell(key, s["metrics"].get(key), (s.get("intervals") or {}).get(key),
                                  (vs_first or {}).get(s["name"], {}).get(key)) for s in listed]))
    for key, value in (data.get("loss") or {}).items():
        if key not in ("loss_tokens", "loss_examples") and listed:
            label = f"{key} (lower is better, computed once)" if lower_is_better(key) else f"{key} (computed once)"
            rows.append((label, [cell(key, value, None, None)] + [cell(None, "same", None, None)] * (len(listed) - 1)))
    rows.append(("generation speed (examples/s)", [cell(None, s.get("examples_per_s"), None, None) for s in listed]))
    rows.append(("decoding", [cell(None, describe(s), None, None) for s in listed]))
    return header, rows


def plain_cell(key, value, bounds, test, separator: str = " ") -> str:
    parts = [number(value), interval(bounds)]
    if test:
        parts.append(f"({test['delta']:+.4g}{' *' if test['significant'] else ' ns'})")
    return separator.join(part for part in parts if part)


def markdown(data: dict, vs_first: dict | None = None) -> str:
    header, rows = matrix(data, vs_first, plain_cell)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([label, *cells]) + " |" for label, cells in rows]
    notes = [f"{data.get('eval_examples')} eval examples, the same for every strategy; [low, high]: 95% bootstrap "
             "interval."]
    if vs_first:
        notes.append("(change vs the first strategy: * p < 0.05 in a paired bootstrap test, ns not significant)")
    if data.get("status") != "complete":
        notes.append(f"status: {data.get('status')}{': ' + data['error'] if data.get('error') else ''}")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def rich_table(data: dict, vs_first: dict | None = None, title: str | None = None):
    from rich.table import Table
    from rich.text import Text

    header, rows = matrix(data, vs_first, plain_cell)
    table = Table(title=Text(title or f"decoding sweep: {data.get('model')} on {data.get('eval_examples')} examples"),
                  caption=Text("[low, high]: 95% bootstrap interval" + ("; * p < 0.05 vs the first strategy, ns: not "
                                                                        "significant" if vs_first else "")))
    for i, name in enumerate(header):
        table.add_column(Text(name), justify="left" if i == 0 else "right", overflow="fold")
    for label, cells in rows:
        table.add_row(Text(label), *map(Text, cells))
    return table
