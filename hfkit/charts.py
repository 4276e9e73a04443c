"""PNG charts for `hfkit compare`, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

MAX_METRICS_PER_CHART = 6  # enough for ROUGE's four or SQuAD v2's six; one panel each


def metric_charts(groups: dict, out_dir: Path) -> list[Path]:
    """Per task: one panel per metric, baseline and final bars for every run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for task, summaries in groups.items():
        names = [n for n in dict.fromkeys(n for s in summaries for n in s.metrics)
                 if any(_is_number(v) for s in summaries for v in s.metrics.get(n, ()))][:MAX_METRICS_PER_CHART]
        if not names:
            continue
        figure, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 1, 3.6), squeeze=False)
        labels = [s.info["run"] for s in summaries]
        positions = range(len(summaries))
        for axis, name in zip(axes[0], names):
            before = [_value(s.metrics.get(name, (None, None))[0]) for s in summaries]
            after = [_value(s.metrics.get(name, (None, None))[1]) for s in summaries]
            axis.bar([p - 0.2 for p in positions], before, width=0.4, label="baseline", color="#b0b7c3")
            axis.bar([p + 0.2 for p in positions], after, width=0.4, label="final", color="#2f6fdf")
            axis.set_title(name)
            axis.set_xticks(list(positions), labels, rotation=30, ha="right", fontsize=7)
        axes[0][0].legend(fontsize=8)
        figure.suptitle(f"{task}: final vs baseline")
        figure.tight_layout()
        path = out_dir / f"metrics_{task}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        paths.append(path)
    return paths


def loss_chart(summaries: list, path: Path) -> Path | None:
    """Training loss against step, one line per run (from the runs' log history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = [(s.info["run"], s.losses) for s in summaries if s.losses]
    if not curves:
        return None
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, points in curves:
        axis.plot([step for step, _ in points], [loss for _, loss in points], marker=".", label=name)
    axis.set_xlabel("step")
    axis.set_ylabel("training loss")
    axis.set_yscale("log")
    axis.legend(fontsize=7)
    axis.set_title("training loss")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value(value) -> float:
    return float(value) if _is_number(value) else float("nan")  # no bar for a missing value
