"""A study as a table (terminal, markdown, report.html): one row per configuration, best first.

Per configuration: the searched values, the objective's mean ± sd over seeds (n), beside it the
mean width of its trials' 95% bootstrap intervals (eval-sample noise, to weigh against the seed
sd), the test against the best configuration (hfkit.study_stats: change, 95% interval, p, mark),
then cost: mean train time, peak memory, trainable parameters, and what happened to its trials.
"""

from __future__ import annotations

from hfkit.console import interval, number
from hfkit.study_record import Configuration, StudyRecord

LEGEND = ("mean ± sd over seeds (n); interval width: mean width of the trials' 95% bootstrap intervals (eval-sample "
          "noise); vs best: change against the best configuration with its 95% interval and p "
          "(* p < 0.05, ns not significant)")


def short_names(keys: list[str]) -> dict[str, str]:
    """The searched keys' last parts, unless two share one."""
    short = {key: key.rsplit(".", 1)[-1] for key in keys}
    return short if len(set(short.values())) == len(short) else {key: key for key in keys}


def ordered(record: StudyRecord) -> list[Configuration]:
    """Scored configurations best first (the objective's direction), then those without a score."""
    sign = 1 if record.objective.get("direction") == "minimize" else -1
    scored = [c for c in record.configurations if c.objective.get("n")]
    rest = [c for c in record.configurations if not c.objective.get("n")]
    return sorted(scored, key=lambda c: sign * c.objective["mean"]) + rest


def header(record: StudyRecord) -> list[str]:
    key = record.objective["key"]
    direction = " (lower is better)" if record.objective.get("direction") == "minimize" else ""
    return ["", *short_names(list(record.search)).values(), f"{key}{direction}: mean ± sd (n)", "interval width",
            "vs best [95% CI] p", "train s", "peak RSS MB", "trainable params", "trials"]


DROP_ORDER = ("trainable params", "peak RSS MB", "trials", "train s")  # left out first when the terminal is narrow


def rows(record: StudyRecord, separator: str = " ") -> list[list[str]]:
    best = (record.best or {}).get("configuration")
    found = []
    for c in ordered(record):
        found.append([c.id + (f"{separator}(best)" if c.id == best else ""),
                      *(number(c.params.get(k)) for k in record.search), objective_text(c, separator),
                      number(c.interval_width), test_text(c, separator), number(c.cost.get("train_s")),
                      number(c.cost.get("peak_rss_mb")), number(c.cost.get("trainable_params")),
                      trial_states(c, separator)])
    return found


def objective_text(c: Configuration, separator: str = " ") -> str:
    summary = c.objective
    if not summary.get("n"):
        return ""
    sd = f" ± {number(summary['sd'])}" if summary.get("sd") is not None else ""
    return f"{number(summary['mean'])}{sd}{separator}({summary['n']})"


def test_text(c: Configuration, separator: str = " ") -> str:
    test = c.vs_best
    if not test:
        return ""
    mark = "*" if test.get("significant") else "ns"
    return f"{test['delta']:+.4g} {interval((test['low'], test['high']))}{separator}p={test['p_value']:.2g} {mark}"


def trial_states(c: Configuration, separator: str = " ") -> str:
    counts: dict[str, int] = {}
    for trial in c.trials:
        counts[trial.state] = counts.get(trial.state, 0) + 1
    return f",{separator}".join(f"{n} {state}" for state, n in counts.items())


def failures(record: StudyRecord) -> list[str]:
    """One line per failed or pruned trial: its folder and its error."""
    return [f"{c.id} {t.folder or f'trial {t.number}'}: {t.state}: {t.error}" for c in record.configurations
            for t in c.trials if t.state in ("failed", "pruned") and t.error]


def caption(record: StudyRecord) -> str:
    tests = {c.vs_best["test"] for c in record.configurations if c.vs_best}
    how = f"test: {', '.join(sorted(tests))}; " if tests else ""
    return f"{how}{LEGEND}"


def title(record: StudyRecord) -> str:
    seeds = len(record.seeds)
    return (f"study {record.name}: {record.objective['key']} over {seeds} seed{'s' * (seeds != 1)}, "
            f"{record.sampler} search ({record.status})")


def rich_table(record: StudyRecord, width: int = 100):
    """The terminal table, its columns as wide as their cells; the cost columns are left out (named
    in the caption) when it would not fit `width`."""
    from rich.table import Table
    from rich.text import Text

    names, cells = header(record), rows(record, separator="\n")

    def needed(i: int) -> int:
        longest = max([len(line) for row in cells for line in row[i].split("\n")] + [0])
        return max(longest, max(len(word) for word in names[i].split() or [""]))

    kept = list(range(len(names)))
    fits = lambda: sum(needed(i) + 3 for i in kept) + 1 <= width  # noqa: E731 - cells, padding, borders
    for name in DROP_ORDER:
        if fits():
            break
        kept.remove(names.index(name))
    hidden = [names[i] for i in range(len(names)) if i not in kept]
    table = Table(title=Text(title(record)), caption=Text(caption(record) + (
        f"; not shown here: {', '.join(hidden)} (in study.json and hfkit compare --wide)" if hidden else "")))
    for i in kept:
        table.add_column(Text(names[i]), justify="left" if i == 0 or names[i] == "trials" else "right",
                         overflow="fold", width=needed(i) if fits() else None)
    for row in cells:
        table.add_row(*(Text(row[i]) for i in kept))
    return table


def markdown(record: StudyRecord) -> str:
    escape = lambda text: str(text).replace("|", "\\|")  # noqa: E731
    head = header(record)
    lines = [f"**{title(record)}**", "", "| " + " | ".join(map(escape, head)) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows(record)]
    notes = [caption(record), *failures(record), *record.notes]
    if record.importances:
        notes.append("parameter importances (Optuna, PED-ANOVA): "
                     + ", ".join(f"{key} {value:.2f}" for key, value in record.importances.items()))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"
