"""PNG charts of a study (matplotlib, Agg): the objective per value of each searched key (a learning
curve for data.max_train_samples), the objective against train time with its Pareto front, and
Optuna's parameter importances when two or more keys are searched. Every point is a
configuration's mean over seeds with its sd as an error bar; the seeds' own values are the dots.
"""

from __future__ import annotations

import math
from pathlib import Path

from hfkit.charts import COLORS, _pyplot, _save, file_name, label, unit
from hfkit.study_record import Configuration, StudyRecord
from hfkit.study_table import short_names

LEARNING_CURVE_KEY = "data.max_train_samples"


def draw(record: StudyRecord, out_dir: Path) -> dict[str, Path]:
    """{chart name: PNG path} for the study's charts, written into `out_dir`."""
    scored = [c for c in record.configurations if c.objective.get("n")]
    if not scored:
        return {}
    drawn = {}
    for key in record.search:
        drawn[key] = by_key(record, scored, key, out_dir / file_name(f"study_{record.name}", key))
    drawn["pareto"] = pareto(record, scored, out_dir / file_name(f"study_{record.name}", "pareto"))
    if record.importances:
        drawn["importances"] = importances(record, out_dir / file_name(f"study_{record.name}", "importances"))
    return {name: path for name, path in drawn.items() if path}


def _numeric(values: list) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def by_key(record: StudyRecord, scored: list[Configuration], key: str, path: Path) -> Path:
    """The objective against one key's values; one line per combination of the other keys' values."""
    plt = _pyplot()
    objective = record.objective["key"]
    others = [k for k in record.search if k != key]
    short = short_names(list(record.search))
    values = sorted({_hashable(c.params[key]) for c in scored}, key=str)
    numeric = _numeric(values)
    if numeric:
        values = sorted(values)
    position = (lambda v: v) if numeric else (lambda v: values.index(_hashable(v)))
    groups: dict[str, list[Configuration]] = {}
    for c in scored:
        groups.setdefault(", ".join(f"{short[k]}={label_of(c.params[k])}" for k in others) or "mean over seeds", []).append(c)
    figure, axis = plt.subplots(figsize=(7.5, 4.4))
    for i, (name, members) in enumerate(groups.items()):
        members.sort(key=lambda c: position(c.params[key]))
        color = COLORS[i % len(COLORS)]
        xs = [position(c.params[key]) for c in members]
        means = [c.objective["mean"] for c in members]
        axis.errorbar(xs, means, yerr=[c.objective.get("sd") or 0 for c in members], marker="o", capsize=3,
                      color=color, label=name)
        for x, c in zip(xs, members):
            axis.scatter([x] * len(c.objective["values"]), c.objective["values"], s=10, color=color, alpha=0.4)
            axis.annotate(label(c.objective["mean"]), (x, c.objective["mean"]), textcoords="offset points",
                          xytext=(5, 5), fontsize=7, color=color)
    curve = key == LEARNING_CURVE_KEY
    if numeric and min(values) > 0 and max(values) / min(values) >= 10:
        axis.set_xscale("log")
    if not numeric:
        axis.set_xticks(range(len(values)), [label_of(v) for v in values], fontsize=8)
    axis.set_xlabel("training examples (data.max_train_samples)" if curve else key)
    axis.set_ylabel(f"{objective} ({unit(objective)})")
    axis.set_title(("Learning curve: " if curve else "") + f"{objective} per value of {key} "
                   "(mean ± sd over seeds; dots: seeds)", fontsize=10)
    if len(groups) > 1:
        axis.legend(fontsize=7, title=", ".join(short[k] for k in others), title_fontsize=7)
    axis.grid(alpha=0.3)
    axis.margins(x=0.15, y=0.15)
    return _save(figure, path)


def pareto(record: StudyRecord, scored: list[Configuration], path: Path) -> Path | None:
    """Objective against mean train seconds; the front: no other configuration is both faster and better."""
    timed = [c for c in scored if c.cost.get("train_s") is not None]
    if not timed:
        return None
    plt = _pyplot()
    objective = record.objective["key"]
    sign = -1 if record.objective.get("direction") == "minimize" else 1
    front = [c for c in timed if not any(o is not c and o.cost["train_s"] <= c.cost["train_s"]
                                         and sign * o.objective["mean"] >= sign * c.objective["mean"]
                                         and (o.cost["train_s"], o.objective["mean"]) != (c.cost["train_s"], c.objective["mean"])
                                         for o in timed)]
    figure, axis = plt.subplots(figsize=(7.5, 4.4))
    for c in timed:
        on_front = c in front
        axis.errorbar(c.cost["train_s"], c.objective["mean"], yerr=c.objective.get("sd") or 0, marker="o", capsize=3,
                      color=COLORS[0] if on_front else "#9aa3ad")
        axis.annotate(c.id, (c.cost["train_s"], c.objective["mean"]), textcoords="offset points", xytext=(5, 5),
                      fontsize=7)
    front.sort(key=lambda c: c.cost["train_s"])
    axis.step([c.cost["train_s"] for c in front], [c.objective["mean"] for c in front], where="post", color=COLORS[0],
              linewidth=1, label="Pareto front (no other configuration is both faster and better)")
    axis.set_xlabel("train time per trial (s, mean over seeds)")
    axis.set_ylabel(f"{objective} ({unit(objective)})")
    axis.set_title(f"{objective} vs training cost (ids as in the table)", fontsize=10)
    axis.legend(fontsize=7)
    axis.grid(alpha=0.3)
    axis.margins(x=0.15, y=0.15)
    return _save(figure, path)


def importances(record: StudyRecord, path: Path) -> Path:
    plt = _pyplot()
    items = list(record.importances.items())
    figure, axis = plt.subplots(figsize=(7.5, 0.5 * len(items) + 1.5))
    bars = axis.barh(range(len(items)), [value for _, value in items], color=COLORS[2])
    axis.bar_label(bars, labels=[f"{value:.2f}" for _, value in items], fontsize=8, padding=2)
    axis.set_yticks(range(len(items)), [key for key, _ in items], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 1.15)
    axis.set_xlabel("importance (Optuna's PED-ANOVA, sums to 1)")
    axis.set_title(f"Which searched key moves {record.objective['key']} most", fontsize=10)
    return _save(figure, path)


def label_of(value) -> str:
    return label(value) if isinstance(value, float) and math.isfinite(value) else str(value)


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value
