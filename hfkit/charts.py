"""PNG charts for `hfkit compare`, drawn with matplotlib's Agg backend (no display needed).

Every chart has axis labels with units, a value on every bar or line end, and error bars where the
scores have bootstrap intervals: the overview (each run's relative change over its baseline), one
chart per task (baseline and final), per run the training curves with the best step marked, and
per decoding sweep its strategies.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from hfkit.metrics import eval_loss_key, lower_is_better, spec_for_key
from hfkit.record import with_best_step

MAX_METRICS_PER_CHART = 6  # enough for ROUGE's four or SQuAD v2's six; one panel each
COLORS = ["#2f6fdf", "#e07b24", "#2a9d5c", "#c23b5b", "#7b5cc4", "#8c6d31", "#1f9fb4", "#d4a017"]
BASELINE, FINAL = "#b0b7c3", "#2f6fdf"
NOT_CURVES = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second", "eval_examples", "epoch", "step")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def unit(key: str, metric_names=()) -> str:
    """How a score is read: its scale (from its metric's spec; `metric_names`: the run's metrics,
    since squad's exact_match is 0-100 and exact_match's 0-1), and its direction when lower is better."""
    name = key.removeprefix("eval_")
    spec = spec_for_key(name, metric_names)
    if name == "span_loss":
        scale = "nats per window, mean of start and end"
    elif name.endswith("loss"):
        scale = "nats per target token"
    else:
        scale = spec.unit_text() if spec else "score"
    return f"{scale}, lower is better" if lower_is_better(name, metric_names) else scale


def file_name(prefix: str, name: str) -> str:
    return f"{prefix}_{re.sub(r'[^A-Za-z0-9._-]+', '_', name).strip('_')}.png"


def label(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def overview_chart(comparison, path: Path) -> Path | None:
    """Every run's baseline and final headline scores side by side, one panel per score on its own
    scale and unit, so every bar means the same thing: a score. Loss appears once at most (as
    perplexity, for a run scored by loss only); error bars are the final score's 95% interval, and
    * / ns the paired test against the baseline.

    It replaces a chart of relative changes, whose bars meant different things: a part-linear,
    part-log axis, a loss drop drawn as +99%, a gain "from 0" at an arbitrary length, BLEU at +4401%
    dwarfing the rest, and loss and perplexity taking 4 of 7 bars."""
    panels = overview_panels(comparison)
    if not panels:
        return None
    plt = _pyplot()
    columns = min(len(panels), 3)
    rows = math.ceil(len(panels) / columns)
    widest = max(len(entries) for entries in panels.values())
    figure, axes = plt.subplots(rows, columns, figsize=(max(3.3 * columns, 1.3 * widest * columns / 2 + 2), 3.6 * rows),
                                squeeze=False)
    flat = [axis for row in axes for axis in row]
    for axis, ((name, scale), entries) in zip(flat, panels.items()):
        positions = range(len(entries))
        for offset, stage, color in ((-0.2, 0, BASELINE), (0.2, 1, FINAL)):
            values = [_value(entry[1 + stage]) for entry in entries]
            bounds = [entry[4] if stage else None for entry in entries]
            errors = _errors(values, bounds) if any(bounds) else None  # no whiskers where there is no interval
            bars = axis.bar([p + offset for p in positions], values, width=0.4, color=color, yerr=errors, capsize=3,
                            label="final" if stage else "baseline", error_kw={"elinewidth": 0.8})
            marks = [f" {entry[3]}" if stage and entry[3] else "" for entry in entries]
            axis.bar_label(bars, labels=["" if math.isnan(v) else label(v) + mark for v, mark in zip(values, marks)],
                           fontsize=7, padding=2)
        axis.set_title(f"{name}\n({scale})", fontsize=9)
        axis.set_xticks(list(positions), [_wrapped(entry[0]) for entry in entries], fontsize=7)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(axis="y", alpha=0.3)
        _from_zero(axis)
    for axis in flat[len(panels):]:
        axis.axis("off")
    handles, labels = flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper left", fontsize=8, ncol=2, frameon=False)
    figure.suptitle("Baseline and final headline score per run, each on its own scale\n"
                    "(error bars: 95% bootstrap interval; * p < 0.05 vs the baseline, ns: not significant)", fontsize=10)
    return _save(figure, path)


def overview_panels(comparison) -> dict[tuple[str, str], list[tuple]]:
    """{(score, its unit): [(run, baseline, final, mark, final interval)]} for each trained run's
    headline scores (compare.headline_keys: BLEU, chrF, ROUGE-L, SQuAD EM and F1...; perplexity for
    a run scored by loss only, so loss appears once at most); a zero-shot run is a baseline only."""
    from hfkit.compare import headline_keys, metric_names
    from hfkit.significance import mark

    shown = {summary.name: headline_keys(summary) for summary in comparison.runs if not summary.zero_shot}
    panels: dict[tuple[str, str], list[tuple]] = {}
    for name in metric_names(comparison.runs):
        for summary in comparison.runs:
            before, after = summary.metrics.get(name, (None, None))
            if name not in shown.get(summary.name, ()) or not (_is_number(before) or _is_number(after)):
                continue
            bounds = summary.intervals.get(name, (None, None))[1]
            test = summary.vs_baseline.get(name)
            panels.setdefault((name, unit(name, summary.task)), []).append(
                (summary.name, before, after, mark(test) if test else "", bounds))
    return panels


def _wrapped(name: str, width: int = 16) -> str:
    """A run's name on lines of about `width` characters, broken after - _ . where it can be."""
    import textwrap

    return "\n".join(textwrap.wrap(name.replace("-", "- ").replace("_", "_ "), width)).replace("- ", "-").replace("_ ", "_")


def metric_charts(groups: dict, out_dir: Path) -> dict[str, Path]:
    """Per task: one panel per metric, baseline and final bars for every run, 95% intervals as error bars."""
    plt = _pyplot()
    paths = {}
    for task, summaries in groups.items():
        names = [n for n in dict.fromkeys(n for s in summaries for n in s.metrics)
                 if any(_is_number(v) for s in summaries for v in s.metrics.get(n, ()))][:MAX_METRICS_PER_CHART]
        if not names:
            continue
        figure, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 1, 4.2), squeeze=False)
        positions = range(len(summaries))
        for axis, name in zip(axes[0], names):
            for offset, stage, color in ((-0.2, 0, BASELINE), (0.2, 1, FINAL)):
                values = [_value(s.metrics.get(name, (None, None))[stage]) for s in summaries]
                errors = _errors(values, [s.intervals.get(name, (None, None))[stage] for s in summaries])
                bars = axis.bar([p + offset for p in positions], values, width=0.4, color=color, yerr=errors,
                                capsize=3, label="final" if stage else "baseline", error_kw={"elinewidth": 0.8})
                axis.bar_label(bars, labels=["" if math.isnan(v) else label(v) for v in values], fontsize=7, padding=2)
            axis.set_title(name, fontsize=10)
            axis.set_ylabel(f"{name} ({unit(name, _metric_names(summaries))})", fontsize=8)
            axis.set_xlabel("run", fontsize=8)
            axis.set_xticks(list(positions), [s.name for s in summaries], rotation=25, ha="right", fontsize=7)
            _from_zero(axis)
        axes[0][0].legend(fontsize=8)
        figure.suptitle(f"{task}: baseline vs final (error bars: 95% bootstrap intervals)")
        paths[task] = _save(figure, out_dir / file_name("metrics", task))
    return paths


def run_curves(summary, out_dir: Path) -> Path | None:
    """Training loss with validation loss, and each metric scored while training, against the step;
    the best step (record.best) marked on every panel. None for a run never evaluated while training
    (its training loss is in `loss_chart`)."""
    record = summary.record
    history = record.log_history if record else []
    train = [(e["step"], e["loss"]) for e in history if "loss" in e and "step" in e]
    loss_key = eval_loss_key(history)
    evals = [e for e in history if loss_key in e and "step" in e]
    if not evals:
        return None
    keys = [k for k in dict.fromkeys(k for e in evals for k in e)
            if k.startswith("eval_") and k not in (loss_key, *NOT_CURVES) and _is_number(evals[0].get(k))]
    plt = _pyplot()
    panels = 1 + len(keys)
    columns = min(panels, 3)
    figure, axes = plt.subplots(math.ceil(panels / columns), columns, figsize=(4.6 * columns, 3.6 * math.ceil(panels / columns)),
                                squeeze=False)
    flat = [axis for row in axes for axis in row]
    best = best_step(record)
    _curve(flat[0], train, "training loss", COLORS[0])
    _curve(flat[0], [(e["step"], e[loss_key]) for e in evals], "validation loss", COLORS[1])
    flat[0].set_ylabel(f"loss ({unit(loss_key).removesuffix(', lower is better')})", fontsize=8)
    flat[0].set_title("training vs validation loss", fontsize=10)
    for axis, key in zip(flat[1:], keys):
        _curve(axis, [(e["step"], e[key]) for e in evals if _is_number(e.get(key))], key, COLORS[2])
        axis.set_ylabel(f"{key.removeprefix('eval_')} ({unit(key, _metric_names([summary]))})", fontsize=8)
        axis.set_title(f"{key.removeprefix('eval_')} on the validation set", fontsize=10)
    for axis in flat[:panels]:
        axis.set_xlabel("training step", fontsize=8)
        if best.get("step") is not None:
            axis.axvline(best["step"], color="#c23b5b", linestyle="--", linewidth=1,
                         label=f"best step {best['step']} ({best.get('metric')})")
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    for axis in flat[panels:]:
        axis.axis("off")
    figure.suptitle(f"{summary.name}: training curves")
    return _save(figure, out_dir / file_name("curves", summary.name))


def best_step(record) -> dict:
    """record.best with its step ({} without one; records written before hfkit inferred the step
    from the log may lack it)."""
    return with_best_step(record.best, record.log_history) if record else {}


def _curve(axis, points: list[tuple], name: str, color: str) -> None:
    if not points:
        return
    steps, values = [p[0] for p in points], [p[1] for p in points]
    axis.plot(steps, values, marker="." if len(points) < 60 else None, color=color, label=name)
    axis.annotate(label(values[-1]), (steps[-1], values[-1]), textcoords="offset points", xytext=(4, 4), fontsize=7,
                  color=color)
    axis.margins(x=0.1, y=0.1)  # room for the last value's label


def loss_chart(summaries: list, path: Path) -> Path | None:
    """Training loss against step, one line per run (from the runs' log history)."""
    curves = [(s.name, s.losses) for s in summaries if s.losses]
    if not curves:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 4.2))
    for i, (name, points) in enumerate(curves):
        _curve(axis, points, name, COLORS[i % len(COLORS)])
    axis.set_xlabel("training step")
    axis.set_ylabel("training loss (nats per target token)")
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    axis.set_title("training loss, every run")
    return _save(figure, path)


def sweep_chart(entry, out_dir: Path) -> Path | None:
    """One panel per metric (bars per strategy, 95% intervals) and one for generation speed."""
    listed = entry.strategies
    keys = list(dict.fromkeys(k for s in listed for k in s.get("metrics", {})))[:MAX_METRICS_PER_CHART]
    if not listed or not keys:
        return None
    plt = _pyplot()
    panels = [*keys, "examples_per_s"]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels) + 1, 4.2), squeeze=False)
    names = [s["name"] for s in listed]
    for i, (axis, key) in enumerate(zip(axes[0], panels)):
        speed = key == "examples_per_s"
        values = [_value(s.get(key) if speed else s["metrics"].get(key)) for s in listed]
        errors = None if speed else _errors(values, [(s.get("intervals") or {}).get(key) for s in listed])
        bars = axis.bar(range(len(listed)), values, color=COLORS[i % len(COLORS)], yerr=errors, capsize=3)
        axis.bar_label(bars, labels=["" if math.isnan(v) else label(v) for v in values], fontsize=7, padding=2)
        axis.set_xticks(range(len(listed)), names, rotation=25, ha="right", fontsize=7)
        axis.set_xlabel("decoding strategy", fontsize=8)
        axis.set_ylabel("examples per second" if speed else f"{key} ({unit(key, entry.data.get('metric_names') or ())})",
                        fontsize=8)
        axis.set_title("generation speed" if speed else key, fontsize=10)
        _from_zero(axis)
    figure.suptitle(f"{entry.name}: decoding strategies on the same {entry.data.get('eval_examples')} examples")
    return _save(figure, out_dir / file_name("sweep", entry.name))


def _metric_names(summaries: list) -> list[str]:
    return list(dict.fromkeys(n for s in summaries if s.record for n in s.record.metric_names))


def _from_zero(axis) -> None:
    """Bars of scores start at 0 (no negative axis under all-zero scores), with room for the labels."""
    heights = [h for bar in axis.patches if (h := bar.get_height()) == h]  # NaN: a missing value, no bar
    if not any(heights):
        axis.set_ylim(0.0, 1.0)
        return
    low, high = axis.get_ylim()
    axis.set_ylim(low if min(heights) < 0 else 0.0, high * 1.1)


def _save(figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _errors(values: list[float], bounds: list) -> list[list[float]]:
    """matplotlib's yerr (distances below and above) from [low, high] intervals; 0 where there is none."""
    below, above = [], []
    for value, pair in zip(values, bounds):
        ok = pair and not math.isnan(value) and all(_is_number(b) and math.isfinite(b) for b in pair)
        below.append(max(value - pair[0], 0.0) if ok else 0.0)
        above.append(max(pair[1] - value, 0.0) if ok else 0.0)
    return [below, above]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value(value) -> float:
    return float(value) if _is_number(value) else float("nan")  # no bar for a missing value
