"""What hfkit prints: one console, levels set by the CLI's -q/-v, only the main process speaks.

Under `accelerate launch` every process runs the whole job; only the main one prints (the others
would repeat it). `quiet` keeps errors and final results; `verbose` also lets transformers' and
datasets' own logging and progress bars through.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from rich.console import Console

console = Console()
_LEVEL = {"value": "normal"}  # quiet | normal | verbose


def set_level(level: str) -> None:
    _LEVEL["value"] = level


def level() -> str:
    return _LEVEL["value"]


def _is_main() -> bool:
    from hfkit import distributed

    return distributed.is_main()


def say(message, important: bool = False) -> None:
    """Print on the main process; `important` messages are printed even with --quiet."""
    if (important or level() != "quiet") and _is_main():
        console.print(message)


@contextmanager
def progress(total: int, description: str):
    """A progress bar with items/s on the main process; yields `advance(n)`."""
    if total <= 0 or level() == "quiet" or not _is_main():
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    started = time.perf_counter()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total, rate="")

        def advance(n: int) -> None:
            done = bar.tasks[0].completed + n
            rate = done / max(time.perf_counter() - started, 1e-9)
            bar.update(task, advance=n, rate=f"{rate:.1f} examples/s")

        yield advance
    elapsed = time.perf_counter() - started
    say(f"{description}: {total} examples in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f} examples/s)")


def results_table(baseline, final, title: str):
    """A rich table (metric, baseline, final, change) of two evaluations, then the metrics' signatures."""
    from rich.console import Group
    from rich.table import Table

    table = Table(title=title)
    for column in ("metric", "baseline", "final", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    before_all = baseline.metrics if baseline else {}
    after_all = final.metrics if final else {}
    for key in dict.fromkeys([*before_all, *after_all]):
        before, after = before_all.get(key), after_all.get(key)
        change = f"{after - before:+.4f}" if _is_number(before) and _is_number(after) else ""
        table.add_row(key, _fmt(before, (baseline.intervals if baseline else {}).get(key)),
                      _fmt(after, (final.intervals if final else {}).get(key)), change)
    chosen = final or baseline
    details = chosen.details if chosen else {}
    lines = [f"{key}: {value}" for key, value in details.items() if key.endswith("signature")]
    if chosen is not None:
        lines.append(f"{chosen.examples} eval examples, scored in {chosen.dtype}" if chosen.examples is not None else "")
    return Group(table, *[line for line in lines if line])


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value, interval=None) -> str:
    if value is None:
        return "-"
    if not _is_number(value):
        return str(value)
    text = f"{value:.4f}"
    return f"{text} [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else text


def number(value) -> str:
    """A table's number: 4 significant digits, thousands with separators, '' for none."""
    if value is None:
        return ""
    if isinstance(value, bool) or not _is_number(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def interval(bounds) -> str:
    """[low, high] as text ('' without an interval)."""
    return f"[{number(bounds[0])}, {number(bounds[1])}]" if bounds else ""
