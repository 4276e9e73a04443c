"""`hfkit compare` as text: the terminal table, markdown, CSV and JSON.

A metric cell reads `baseline -> final [low, high] (change mark)`: [low, high] is the final score's
95% bootstrap interval, the mark the paired test of final against baseline (* p < 0.05, ns not
significant). The terminal table fits the terminal (80-120 columns): metric cells wrap, and the
least useful columns are dropped first (`--wide` keeps them all).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from hfkit import compare, study_table, sweep_table
from hfkit.compare import COLUMNS, Comparison, RunSummary
from hfkit.console import interval, number
from hfkit.formats import ComparedMetric, ComparedRun, ComparedSweep, CompareSummary
from hfkit.metrics import lower_is_better
from hfkit.significance import ALPHA, MIN_DISCORDANT, mark, verdict

LABELS = {"run": "run", "status": "status", "task": "task", "model": "model", "method": "method",
          "dataset": "dataset", "eval_set": "eval set", "eval_examples": "eval examples", "steps": "steps",
          "train_s": "train time (s)", "samples_per_s": "train samples/s", "peak_rss_mb": "peak RSS (MB)",
          "trainable_params": "trainable params"}
# A task's table: who and how first, then the metrics (what people look for), then the details.
LEADING = ("run", "status", "method")
DETAILS = ("eval_set", "eval_examples", "model", "dataset", "steps", "train_s", "samples_per_s", "peak_rss_mb",
           "trainable_params")
# The terminal drops these first when the table is too wide for it (the task is in the title).
DROP_ORDER = ("trainable_params", "samples_per_s", "peak_rss_mb", "steps", "dataset", "model", "train_s",
              "eval_set", "eval_examples", "method")
LEGEND = (f"[low, high]: 95% bootstrap interval of the score; change: final - baseline, * significant, ns not: a "
          f"paired test (exact McNemar for scores of 0 or 1 per example such as exact match, else a paired bootstrap) "
          f"with p < {ALPHA} after Holm's correction over the metrics of one comparison, and at least {MIN_DISCORDANT} "
          f"examples scored differently (with fewer, no two-sided test can reach p < {ALPHA}); 'lower is better' for "
          "losses, perplexity and TER; eval_span_loss (extractive QA, nats per window) is not eval_loss (nats per "
          "target token)")


def metric_label(name: str) -> str:
    return f"{name} (lower is better)" if lower_is_better(name) else name


def score_text(summary: RunSummary, name: str, separator: str = " ") -> str:
    """`baseline -> final [low, high] (change mark)`; a zero-shot run shows its score as the baseline."""
    row = summary.row(name)
    if row.final is None and row.baseline is None:
        return ""
    if row.final is None or summary.zero_shot:
        return " ".join(p for p in (number(row.baseline), interval(row.baseline_interval), "(baseline)") if p)
    shown = f"{number(row.baseline)} → {number(row.final)}" if row.baseline is not None else number(row.final)
    parts = [shown, interval(row.final_interval)]
    if row.change is not None:
        parts.append(f"({row.change:+.4g}{' ' + mark(row.test) if row.test else ''})")
    return separator.join(p for p in parts if p)


def task_table(group: list[RunSummary], separator: str = " ") -> tuple[list[str], list, list[list[str]]]:
    """Header (readable labels), column keys (None for a metric) and cells of one task's table."""
    names = compare.metric_names(group)
    keys = [*LEADING, *([None] * len(names)), *DETAILS]
    header = [LABELS[c] for c in LEADING] + [metric_label(n) for n in names] + [LABELS[c] for c in DETAILS]
    cells = [[number(s.info.get(c)) for c in LEADING] + [score_text(s, n, separator) for n in names]
             + [number(s.info.get(c)) for c in DETAILS] for s in group]
    return header, keys, cells


def pair_rows(comparison: Comparison) -> list[list[str]]:
    """One row per run and metric of every paired test across runs: eval set, run, reference, metric,
    reference's score, run's score, change with its interval, p-value, verdict."""
    rows = []
    for summary in comparison.runs:
        for key, test in summary.vs_reference.items():
            rows.append([summary.info.get("eval_set") or "", summary.name, summary.reference or "", metric_label(key),
                         number(test["a"]), number(test["b"]), f"{test['delta']:+.4g} {interval((test['low'], test['high']))}",
                         test.get("test", "paired bootstrap"), number(test.get("discordant")), f"{test['p_value']:.2g}",
                         _p(test.get("p_holm")), verdict(key, test)])
    return rows


PAIR_HEADER = ["eval set", "run", "paired with", "metric", "reference run's score", "run's score", "change [95% CI]",
               "test", "examples differing", "p", "p (Holm)", "verdict"]


def _p(value) -> str:
    return "" if value is None else f"{value:.2g}"


def pairing_notes(comparison: Comparison) -> list[str]:
    """How runs were paired, and where they were not (different eval sets, no predictions)."""
    notes = []
    for label, members in comparison.eval_sets.items():
        if len(members) > 1:
            notes.append(f"eval set {label}: {len(members)} runs; each is paired with {members[0]} (the first given)")
    alone = [f"{members[0]} ({label})" for label, members in comparison.eval_sets.items() if len(members) == 1]
    if len(alone) > 1 or (alone and len(comparison.eval_sets) > 1):
        notes.append("runs on different eval sets are never paired: " + ", ".join(alone))
    notes += [f"{s.name}: {note}" for s in comparison.runs for note in s.notes]
    notes += [f"{s.name}: {note}" for s in comparison.sweeps for note in s.notes]
    return notes


def to_markdown(comparison: Comparison) -> str:
    parts = [f"### Study: {record.name}\n\n" + study_table.markdown(record).rstrip() for record in comparison.studies]
    for task, group in comparison.by_task().items():
        header, _, cells = task_table(group)
        parts.append(f"### {task}\n\n" + _markdown_table(header, cells))
    rows = pair_rows(comparison)
    if rows:
        parts.append("### Paired significance (runs on one eval set)\n\n" + _markdown_table(PAIR_HEADER, rows))
    for entry in comparison.sweeps:
        parts.append(f"### Decoding sweep: {entry.name}\n\n" + sweep_table.markdown(entry.data, entry.vs_first))
    notes = pairing_notes(comparison)
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"- {line}" for line in [LEGEND, *notes]) + "\n"


def _markdown_table(header: list[str], cells: list[list[str]]) -> str:
    escape = lambda text: str(text).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(escape, row)) + " |" for row in cells])


def flat_rows(comparison: Comparison) -> list[dict[str, Any]]:
    """One dict per run: the columns, then per metric baseline/final/delta, the final interval and
    the paired tests (vs baseline, vs the eval set's reference run)."""
    names = compare.metric_names(comparison.runs)
    rows = []
    for summary in comparison.runs:
        row = {**{c: summary.info.get(c) for c in COLUMNS}, "reference": summary.reference}
        for name in names:
            before, after = summary.metrics.get(name, (None, None))
            bounds = summary.intervals.get(name, (None, None))[1] or (None, None)
            row.update({f"{name}_baseline": before, f"{name}_final": after, f"{name}_delta": compare.delta(before, after),
                        f"{name}_final_low": bounds[0], f"{name}_final_high": bounds[1]})
            for prefix, tests in (("vs_baseline", summary.vs_baseline), ("vs_reference", summary.vs_reference)):
                test = tests.get(name) or {}
                row[f"{name}_{prefix}_p_value"] = test.get("p_value")
                row[f"{name}_{prefix}_p_holm"] = test.get("p_holm")
                row[f"{name}_{prefix}_discordant"] = test.get("discordant")
                row[f"{name}_{prefix}_significant"] = test.get("significant")
        rows.append(row)
    return rows


def to_csv(comparison: Comparison) -> str:
    rows = flat_rows(comparison)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def to_json(comparison: Comparison) -> str:
    """compare.json (hfkit.formats.CompareSummary): every run with its metrics and tests, the sweeps, the eval sets."""
    runs = []
    for s in comparison.runs:
        metrics = {}
        for name in s.rows:
            row = s.row(name)
            metrics[name] = ComparedMetric(
                baseline=row.baseline, final=row.final, delta=row.change, baseline_interval=row.baseline_interval,
                final_interval=row.final_interval, lower_is_better=row.lower_is_better, vs_baseline=row.test,
                vs_reference=s.vs_reference.get(name))
        runs.append(ComparedRun(**{**s.info, "path": str(s.path), "zero_shot": s.zero_shot, "reference": s.reference,
                                   "metrics": metrics, "notes": s.notes}))
    sweeps = [ComparedSweep(**{**e.data, "name": e.name, "path": str(e.path), "vs_first": e.vs_first, "notes": e.notes})
              for e in comparison.sweeps]
    studies = [{"path": str(record.path), **record.model_dump(mode="json")} for record in comparison.studies]
    summary = CompareSummary(runs=runs, sweeps=sweeps, eval_sets=comparison.eval_sets, studies=studies, alpha=ALPHA)
    return json.dumps(_finite(summary.model_dump(mode="json")), indent=2, allow_nan=False)


def _finite(value):
    """NaN and infinity as null: JSON has neither (a squad_v2 subset missing from a resample gives NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def rich_tables(comparison: Comparison, width: int, wide: bool = False) -> list:
    """The terminal view: one table per task fitted to `width` columns, the paired tests per eval
    set, the sweeps, then the legend and the pairing notes."""
    from rich.text import Text

    shown: list = [study_table.rich_table(record, width=10**6 if wide else width) for record in comparison.studies]
    numbers = {summary.name: f"#{i}" for i, summary in enumerate(comparison.runs, 1)}
    for task, group in comparison.by_task().items():
        header, keys, cells = task_table(group, separator="\n")  # a metric (key None) is never dropped
        if not wide:  # the status goes under the run's name (a column of "complete" costs a lot of width)
            for summary, row in zip(group, cells):
                status = row.pop(1)
                row[0] += "" if status in ("complete", "evaluated") else f"\n{status}"
            header, keys = [h for i, h in enumerate(header) if i != 1], [k for i, k in enumerate(keys) if i != 1]
        shown += _numbered(f"{task}: baseline → final [95% interval] (change)", header, cells, keys, width, wide,
                           [s.name for s in group], numbers)
    rows = pair_rows(comparison)
    for (label, reference) in dict.fromkeys((row[0], row[2]) for row in rows):
        group = [[row[1], *row[3:]] for row in rows if (row[0], row[2]) == (label, reference)]
        header = ["run", "metric", "reference's score", "run's score", "change [95% CI]", "test", "differing", "p",
                  "p (Holm)", "verdict"]
        shown += _numbered(f"eval set {label}: paired with {reference} (the first given)", header,
                           [[*r[:4], r[4].replace(" [", "\n["), *r[5:]] for r in group],
                           ["run", "metric", "reference_score", "run_score", None, "test", None, "p", None, "verdict"],
                           width, wide, [r[0] for r in group], numbers, drop=("reference_score", "run_score", "test", "p"))
    for entry in comparison.sweeps:
        header, matrix_rows = sweep_table.matrix(entry.data, entry.vs_first,
                                           lambda *cell: sweep_table.plain_cell(*cell, separator="\n"))
        shown.append(_fitted(f"decoding sweep: {entry.name}", header, [[label, *cells] for label, cells in matrix_rows],
                             ["metric", *([None] * (len(header) - 1))], width, wide))
    shown += [Text(line) for line in (LEGEND, *pairing_notes(comparison))]
    return shown


TEXT_KEYS = {"run": 24, "number": 14, "status": 14, "model": 20, "method": 10, "dataset": 16, "task": 12, "metric": 22,
             "verdict": 7, "test": 10}  # text columns and the width they wrap at


def _numbered(title: str, header: list[str], rows: list[list[str]], keys: list, width: int, wide: bool,
              names: list[str], numbers: dict[str, str], drop: tuple[str, ...] = DROP_ORDER) -> list:
    """`_fitted`, or, when the table does not fit `width` with its run names whole (at 80 columns six
    ROUGE and loss columns once squeezed a name over six lines), the runs as #1, #2... with a key below."""
    from rich.text import Text

    if wide or _layout(header, rows, keys, width, drop)[1]:
        return [_fitted(title, header, rows, keys, width, wide, drop)]
    short = [[numbers[name] + row[0][len(name):] if row[0].startswith(name) else row[0], *row[1:]]
             for name, row in zip(names, rows)]
    key = [Text(f"{numbers[name]}  {name}") for name in dict.fromkeys(names)]
    return [_fitted(title, header, short, ["number", *keys[1:]], width, wide, drop), *key]


def _layout(header: list[str], rows: list[list[str]], keys: list, width: int,
            drop: tuple[str, ...]) -> tuple[list[int], bool, callable]:
    """The columns kept (DROP_ORDER's least useful left out first, until the table fits `width`),
    whether it then fits, and each column's width: what its cells need, text wrapping at TEXT_KEYS'."""
    def needed(i: int) -> int:
        longest = max([len(line) for row in rows for line in str(row[i]).split("\n")] + [0])
        head = max(len(word) for word in header[i].split() or [""])
        return max(head, min(longest, TEXT_KEYS.get(keys[i], longest)))

    kept = list(range(len(header)))
    droppable = [keys.index(key) for key in drop if key in keys]
    total = lambda: sum(needed(i) for i in kept) + 3 * len(kept) + 1  # noqa: E731 - cells, padding, borders
    while droppable and total() > width:
        kept.remove(droppable.pop(0))
    return kept, total() <= width, needed


def _fitted(title: str, header: list[str], rows: list[list[str]], keys: list, width: int, wide: bool,
            drop: tuple[str, ...] = DROP_ORDER):
    """A rich table whose columns get the width their cells need (text columns wrap at TEXT_KEYS'
    widths); columns in DROP_ORDER are left out, least useful first, until it fits `width`."""
    from rich.table import Table
    from rich.text import Text

    kept, fits, needed = _layout(header, rows, keys, width, drop) if not wide else (
        list(range(len(header))), True, None)
    # when it does not fit, rich narrows the columns itself (folding numbers, never cropping)
    table = Table(title=Text(title))
    for i in kept:
        text = keys[i] in TEXT_KEYS
        table.add_column(Text(header[i]), justify="left" if text else "right", overflow="fold",
                         width=needed(i) if fits and not wide else None,  # fixed: rich's own squeeze
                         max_width=TEXT_KEYS.get(keys[i]) if text and not wide else None)  # narrows the wrong columns
    for row in rows:
        table.add_row(*(Text(str(row[i])) for i in kept))  # Text: a '[...]' in a cell is text, not rich markup
    hidden = [header[i] for i in range(len(header)) if i not in kept]
    if hidden:
        table.caption = Text(f"not shown: {', '.join(hidden)} (--wide shows every column)")
    return table
