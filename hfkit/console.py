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


def configure_output(level: str) -> None:
    """Log levels for hfkit, transformers and datasets; silence the noise users cannot act on.

    The CLI calls it with -q/-v; the Python API (hfkit.train, hfkit.evaluate) with the level set last
    (normal), so a notebook sees what the terminal sees."""
    import os
    import sys
    import warnings

    set_level(level)
    if level == "verbose":
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # also transformers' "Loading weights" bars
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")  # torch on a machine without an accelerator
    warnings.filterwarnings("ignore", message=".*fast path.*")
    # The variables above reach libraries imported from now on; these calls, those already imported.
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
        sys.modules["datasets"].logging.set_verbosity_error()
    if "transformers" in sys.modules:
        sys.modules["transformers"].logging.set_verbosity_error()
        sys.modules["transformers"].logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()


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


def results_table(baseline, final, title: str, metric_names=()):
    """The results table (hfkit.results) of two evaluations as a rich table (metric, baseline, final,
    change), then the metrics' signatures."""
    from rich.console import Group
    from rich.table import Table

    from hfkit.results import result_rows

    table = Table(title=title)
    for column in ("metric", "baseline", "final", "change"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for row in result_rows(baseline, final, metric_names):
        change = f"{row.change:+.4f}" if row.change is not None else ""
        table.add_row(row.key, _fmt(row.baseline, row.baseline_interval), _fmt(row.final, row.final_interval), change)
    chosen = final or baseline
    details = chosen.details if chosen else {}
    lines = [f"{key}: {value}" for key, value in details.items() if key.endswith("signature")]
    if chosen is not None and chosen.examples is not None:
        lines.append(f"{chosen.examples} eval examples, scored in {chosen.dtype}" + _loss_count(chosen))
        stored = {stage: e.model_dtype for stage, e in (("baseline", baseline), ("final", final)) if e and e.model_dtype}
        if stored:
            lines.append("weights stored in: " + ", ".join(f"{stage} {dtype}" for stage, dtype in stored.items()))
    return Group(table, *[line for line in lines if line])


def _loss_count(evaluation) -> str:
    """'; loss over N examples (T target tokens)': what eval_loss is the mean over."""
    if evaluation.loss_examples is None:
        return ""
    unit = f"{evaluation.loss_tokens:,} target tokens" if evaluation.loss_tokens else f"{evaluation.loss_windows:,} windows"
    return f"; loss over {evaluation.loss_examples} examples ({unit})"


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
