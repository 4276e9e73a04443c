"""`hfkit data`'s files: data.json, PNG charts and report.html, one self-contained page (CSS inline,
charts as data URIs, no script, nothing fetched), styled like the comparison report.

Order: rows per split and step, what each filter removed (three rows each), token lengths with
their limits, duplicate clusters, every contamination match, languages, and five training examples
as the model sees them (the part that carries loss highlighted).
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from hfkit import data_charts, runs
from hfkit.data_report import DataReport
from hfkit.errors import HfkitError
from hfkit.report_html import STYLE, _img, _table

MATCHES_SHOWN = 200  # contamination matches on the page; data.json holds every one
EXTRA_STYLE = """
.seen{white-space:pre-wrap;font:12px/1.5 ui-monospace,Menlo,Consolas,monospace;border:1px solid #dde3ea;
border-radius:6px;padding:8px 10px;margin:8px 0;word-break:break-word}
.seen .ctx{color:#6b7683}.seen .loss{background:#dff3e4;color:#0b5323;border-bottom:2px solid #2a9d5c}
.seen .part{display:block;font:600 11px system-ui,sans-serif;color:#4a5562;margin-top:4px}
"""


def write(report: DataReport, out_dir: Path) -> list[Path]:
    """data.json, the charts and report.html into `out_dir` (other files there stay); the paths written."""
    check_output(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        runs.write_json(out_dir / "data.json", report.as_json())
        charts = draw(report, out_dir)
        runs.write_text(out_dir / "report.html", page(report, charts))
    except OSError as err:
        raise HfkitError(f"--output: cannot write the report into {out_dir} ({err.strerror or err}); "
                         "give a folder you can write to") from None
    return [out_dir / "data.json", *charts.values(), out_dir / "report.html"]


def check_output(out_dir: Path) -> None:
    """Before the data is prepared: the report's folder must be a folder."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HfkitError(f"--output: {out_dir} is a file, not a folder; give a folder for the report")


def draw(report: DataReport, out_dir: Path) -> dict[str, Path]:
    drawn = {"cleaning": data_charts.cleaning_chart(report.cleaning.get("train", []), out_dir / "cleaning.png"),
             "languages": data_charts.language_chart(report.languages, out_dir / "languages.png")}
    for split, info in report.lengths.items():
        drawn[f"lengths-{split}"] = data_charts.length_chart(split, info, report.preparation.get(split, {}),
                                                             data_charts.chart_path(out_dir, "lengths", split))
    return {key: path for key, path in drawn.items() if path is not None}


def page(report: DataReport, charts: dict[str, Path]) -> str:
    sections = [("steps", "Rows per split and step", _steps(report, charts.get("cleaning"))),
                ("filters", "What each filter removed", _filters(report)),
                ("lengths", "Token lengths", _lengths(report, charts)),
                ("duplicates", "Duplicate clusters", _duplicates(report)),
                ("contamination", "Training rows that match evaluation rows", _contamination(report)),
                ("languages", "Languages", _languages(report, charts.get("languages"))),
                ("examples", "Training examples as the model sees them", _examples(report))]
    shown = [(anchor, title, body) for anchor, title, body in sections if body]
    nav = " ".join(f'<a href="#{anchor}">{html.escape(title)}</a>' for anchor, title, _ in shown)
    about = report.describe
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    summary = (f"{about.get('task')} ({about.get('format')}) · {about.get('dataset')} · tokenizer of {about.get('model')}"
               f" · generated {stamp} by hfkit {version('hfkit')}")
    body = "\n".join(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>\n{content}</section>'
                     for anchor, title, content in shown)
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in report.notes)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>hfkit data: {html.escape(report.name)}</title><style>{STYLE}{EXTRA_STYLE}</style></head><body>\n"
            f"<header><h1>Data: {html.escape(report.name)}</h1><p>{html.escape(summary)}</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n{notes}{body}\n</main></body></html>\n")


def _steps(report: DataReport, chart: Path | None) -> str:
    rows = [f'<tr data-split="{_e(split)}"><td class="text">{_e(split)}</td><td class="text">{_e(step["step"])}</td>'
            f'<td>{_n(step.get("removed"))}</td><td>{_n(step["rows"])}</td></tr>'
            for split, steps in report.cleaning.items() for step in steps]
    head = '<th class="text">split</th><th class="text">step</th><th>removed</th><th>rows</th>'
    prepared = [f'<tr><td class="text">{_e(split)}</td><td class="text">'
                + _e(", ".join(f"{key.replace('_', ' ')} {value:,}" for key, value in counts.items())) + "</td></tr>"
                for split, counts in report.preparation.items()]
    return ('<p class="note">Training data is cleaned in this order; evaluation data is read as the files hold '
            "it.</p>" + _table(head, rows, "steps") + (_img(chart, "training rows per step") if chart else "")
            + "<h3>Tokenized</h3>" + _table('<th class="text">split</th><th class="text">counts</th>', prepared,
                                            "prepared"))


def _filters(report: DataReport) -> str:
    parts = []
    for step, info in report.removed.items():
        reasons = ", ".join(f"{why} {n:,}" for why, n in info["reasons"].items())
        parts.append(f'<h3 data-step="{_e(step)}">{_e(step)}: {info["removed"]:,} removed</h3>'
                     + (f'<p class="note">by rule: {_e(reasons)}</p>' if reasons else "")
                     + _rows_table(info["examples"], extra="why"))
    return "\n".join(parts)


def _lengths(report: DataReport, charts: dict[str, Path]) -> str:
    parts = []
    for split, info in report.as_json()["lengths"].items():
        chart = charts.get(f"lengths-{split}")
        limits = ", ".join(f"{key} {value:,}" for key, value in info["limits"].items())
        rows = [f'<tr><td class="text">{_e(stats["label"])}</td>' + "".join(_n(stats[k], cell=True) for k in
                ("examples", "min", "median", "mean", "p95", "max")) + "</tr>"
                for part, stats in info.items() if part in ("prompt", "target")]
        head = '<th class="text">tokens</th>' + "".join(f"<th>{k}</th>" for k in
                                                       ("examples", "min", "median", "mean", "95th pct", "max"))
        parts.append(f"<h3>{_e(split)}</h3><p class=\"note\">limits: {_e(limits)}</p>" + _table(head, rows, "lengths")
                     + (_img(chart, f"token lengths of the {split} split") if chart else ""))
    return "\n".join(parts)


def _duplicates(report: DataReport) -> str:
    parts = []
    for step, clusters in report.duplicates.items():
        label = "exact duplicates (after normalisation)" if step == "dedup" else "near duplicates (MinHash)"
        if not clusters:
            parts.append(f'<p class="note">{label}: none</p>')
            continue
        parts.append(f"<h3>{label}</h3>")
        for cluster in clusters:
            parts.append(f'<p class="note">{cluster["size"]} rows; the first is kept:</p>' + _rows_table(cluster["rows"]))
    return "\n".join(parts)


def _contamination(report: DataReport) -> str:
    found = report.contamination
    if not found:
        return '<p class="note">No training row matches an evaluation row.</p>' if "decontaminate" in str(
            report.cleaning) else ""
    rows = [f'<tr data-match="{i}"><td>{m["train_row"] + 1}</td><td class="wrap">{_e(_text(m["train"]))}</td>'
            f'<td class="text">{_e(m["eval_split"])} row {m["eval_row"] + 1}</td>'
            f'<td class="wrap">{_e(_text(m["eval"]))}</td></tr>' for i, m in enumerate(found[:MATCHES_SHOWN])]
    more = (f'<p class="note">{len(found) - MATCHES_SHOWN:,} more in data.json.</p>'
            if len(found) > MATCHES_SHOWN else "")
    head = '<th>training row</th><th class="text">training text</th><th class="text">matches</th><th class="text">evaluation text</th>'
    return (f'<p class="note">{len(found):,} training rows removed because an evaluation row holds the same text '
            "(after the same normalisation); the evaluation rows stay.</p>" + _table(head, rows, "contamination") + more)


def _languages(report: DataReport, chart: Path | None) -> str:
    rows = [f'<tr><td class="text">{_e(split)}</td><td class="text">'
            + _e(", ".join(f"{data_charts.language_name(code)} {n:,}" for code, n in counts.items())) + "</td></tr>"
            for split, counts in report.languages.items()]
    return _table('<th class="text">split</th><th class="text">rows per language</th>', rows, "languages") + (
        _img(chart, "languages per split") if chart else "")


def _examples(report: DataReport) -> str:
    parts = ['<p class="note">Decoded from the token ids training reads; <span class="seen"><span class="loss">'
             'highlighted</span></span> tokens carry loss, grey ones are context only.</p>']
    for number, segments in enumerate(report.examples, 1):
        spans = "".join((f'<span class="part">{_e(s["part"])}</span>' if "part" in s else "")
                        + f'<span class="{"loss" if s["loss"] else "ctx"}">{_e(s["text"])}</span>' for s in segments)
        parts.append(f'<h3>example {number}</h3><div class="seen" data-example="{number}">{spans}</div>')
    return "\n".join(parts) if report.examples else ""


def _rows_table(rows: list[dict], extra: str | None = None) -> str:
    if not rows:
        return ""
    keys = [key for key in rows[0] if key != extra] + ([extra] if extra else [])
    head = "".join(f'<th class="text">{_e(key)}</th>' for key in keys)
    body = ["<tr>" + "".join(f'<td class="wrap">{_e(_text(row.get(key)))}</td>' for key in keys) + "</tr>"
            for row in rows]
    return _table(head, body, "rows")


def _text(value) -> str:
    if isinstance(value, dict):
        return "\n".join(f"{key}: {_text(item)}" for key, item in value.items())
    return "" if value is None else str(value)


def _e(value) -> str:
    return html.escape(str(value))


def _n(value, cell: bool = False) -> str:
    text = "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)
    return f"<td>{html.escape(text)}</td>" if cell else html.escape(text)
