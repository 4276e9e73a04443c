"""report.html: the comparison as one self-contained page (CSS inline, charts as data URIs, no
script, nothing fetched), and `write_report`, which writes it with the CSV, markdown, JSON and PNGs.

Order: the cross-task overview first (baseline and final side by side, each metric on its own scale,
and one table row per run and metric), then one table per task (metric cells with intervals and
significance marks), the paired tests between runs, decoding sweeps, training curves, and per run
the examples where the final model and its baseline differ most. Tables scroll sideways inside
their box instead of being cut on a narrow screen, with a shadow at the edge that has more.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import tempfile
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from hfkit import charts, compare, runs, study_charts, study_table, sweep_table, tables
from hfkit.compare import Comparison, RunSummary
from hfkit.errors import HfkitError
from hfkit.console import interval, number
from hfkit.significance import ALPHA, MIN_DISCORDANT, biggest_differences, verdict

TEXT_COLUMNS = ("run", "status", "task", "model", "method", "dataset", "eval_set")
EXAMPLES_SHOWN = 3  # gains and as many losses per run
CUT = 400  # characters of an input, reference or prediction shown

STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;margin:0;color:#1d232b;background:#fff}
header{background:#1d2b44;color:#fff;padding:18px 24px}header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9d3e3}nav{padding:8px 24px;background:#eef2f7;border-bottom:1px solid #d8dee6}
nav a{color:#1d4fa8;margin-right:14px;text-decoration:none;white-space:nowrap}main{max-width:1400px;margin:0 auto;padding:8px 24px 40px}
h2{margin:28px 0 6px;font-size:19px;border-bottom:2px solid #e3e8ee;padding-bottom:4px}h3{margin:18px 0 4px;font-size:15px}
p.note,li{color:#4a5562}.scroll{overflow-x:auto;margin:8px 0 16px;border:1px solid #dde3ea;border-radius:6px;
background:linear-gradient(to left,#fff 40%,#fff0) right/48px 100% no-repeat local,
radial-gradient(farthest-side at 100% 50%,#0004,#0000) right/20px 100% no-repeat scroll}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:6px 10px;border-bottom:1px solid #e6eaef;text-align:right;vertical-align:top;white-space:nowrap}
th{background:#f3f6f9;font-weight:600;white-space:normal;min-width:7.5em}th.text,td.text{text-align:left}
td.wrap{white-space:pre-wrap;min-width:14em;max-width:36em;text-align:left;word-break:break-word}
tr:hover td{background:#fafbfd}
td:first-child,th:first-child{position:sticky;left:0;background:#fff;z-index:1;box-shadow:1px 0 0 #e6eaef}
table.overview th{min-width:0}table.overview td:last-child{white-space:normal;min-width:16em}
table.overview td:last-child div{padding-left:1em;text-indent:-1em}
table.sweep td,table.pairs td{white-space:normal}table.sweep td:first-child,table.pairs td{min-width:6em}
.ci{white-space:nowrap}
th:first-child{background:#f3f6f9}.ci{color:#6b7683;font-size:12px}.base{color:#6b7683}
.better{color:#137333;font-weight:600}.worse{color:#b3261e;font-weight:600}.ns{color:#6b7683}
.failed,.interrupted,.scoring_failed,.no_scores{color:#b3261e}.running{color:#8a6d00}
img{max-width:100%;height:auto;display:block;margin:8px 0;border:1px solid #eef1f4}
figure{margin:10px 0 22px}figcaption{color:#4a5562;font-size:13px}
.legend{background:#f7f9fb;border:1px solid #e3e8ee;border-radius:6px;padding:8px 12px;font-size:13px;color:#4a5562}
"""


def write_report(comparison: Comparison, out_dir: Path) -> list[Path]:
    """compare.csv, compare.md, compare.json, the PNG charts and report.html into `out_dir`."""
    check_output(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HfkitError(f"--output {out_dir}: cannot create the folder ({err.strerror}); give a folder you can "
                         "write in") from None
    written = []
    for name, text in (("compare.csv", tables.to_csv(comparison)), ("compare.md", tables.to_markdown(comparison)),
                       ("compare.json", tables.to_json(comparison) + "\n")):
        runs.write_text(out_dir / name, text)
        written.append(out_dir / name)
    drawn = draw_charts(comparison, out_dir)
    runs.write_text(out_dir / "report.html", page(comparison, drawn))
    return written + [p for p in _chart_paths(drawn)] + [out_dir / "report.html"]


def check_output(out_dir: Path) -> None:
    """--output names a folder (checked before the runs are read)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise HfkitError(f"--output {out_dir}: that is a file, not a folder; give a folder for the report files")


def standalone(comparison: Comparison) -> str:
    """report.html's text, its charts drawn in a temporary folder (for --format html)."""
    with tempfile.TemporaryDirectory() as folder:
        return page(comparison, draw_charts(comparison, Path(folder)))


def draw_charts(comparison: Comparison, out_dir: Path) -> dict:
    return {
        "overview": charts.overview_chart(comparison, out_dir / "overview.png"),
        "tasks": charts.metric_charts(comparison.by_task(), out_dir),
        "losses": charts.loss_chart(comparison.runs, out_dir / "loss_curves.png"),
        "curves": {s.name: p for s in comparison.runs if (p := charts.run_curves(s, out_dir))},
        "sweeps": {e.name: p for e in comparison.sweeps if (p := charts.sweep_chart(e, out_dir))},
        "studies": {record.name: study_charts.draw(record, out_dir) for record in comparison.studies},
    }


def _chart_paths(drawn: dict) -> list[Path]:
    found = []
    for value in drawn.values():
        if isinstance(value, dict):
            found += [p for item in value.values() for p in (item.values() if isinstance(item, dict) else [item])]
        elif value:
            found.append(value)
    return found


def page(comparison: Comparison, drawn: dict) -> str:
    groups = comparison.by_task()
    sections = [_overview(comparison, drawn.get("overview"))]
    links = [("overview", "Overview")]
    if comparison.studies:
        sections.append(f'<section id="studies"><h2>Studies</h2>\n{_studies(comparison, drawn.get("studies", {}))}'
                        "</section>")
        links.append(("studies", "Studies"))
    for task, group in groups.items():
        sections.append(_task_section(task, group, drawn["tasks"].get(task)))
        links.append((f"task-{_id(task)}", task))
    for anchor, title, body in (("significance", "Paired significance", _significance(comparison)),
                                ("sweeps", "Decoding sweeps", _sweeps(comparison, drawn["sweeps"])),
                                ("curves", "Training curves", _curves(comparison, drawn)),
                                ("examples", "Where final and baseline differ most", _examples(comparison))):
        if body:
            sections.append(f'<section id="{anchor}"><h2>{title}</h2>\n{body}</section>')
            links.append((anchor, title))
    nav = " ".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in links)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    sweeps = len(comparison.sweeps)
    summary = (f"{len(comparison.runs)} run{'s' * (len(comparison.runs) != 1)} on {len(groups)} "
               f"task{'s' * (len(groups) != 1)}" + (f", {sweeps} decoding sweep{'s' * (sweeps != 1)}" if sweeps else "")
               + f" · generated {stamp} by hfkit {version('hfkit')}")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>hfkit report</title>"
            f"<style>{STYLE}</style></head><body>\n<header><h1>hfkit report</h1><p>{html.escape(summary)}</p></header>\n"
            f"<nav>{nav}</nav>\n<main>\n" + "\n".join(sections)
            + f'\n<p class="legend">{html.escape(tables.LEGEND)}</p>\n</main></body></html>\n')


def _overview(comparison: Comparison, chart: Path | None) -> str:
    head = ('<th class="text">task</th><th class="text">run</th><th class="text">status</th><th class="text">method</th>'
            '<th>eval examples</th><th class="text">headline scores: baseline → final, change (%)</th>')
    rows = []
    for s in sorted(comparison.runs, key=lambda s: s.task):
        cells = [_text(s.task), _text(s.name), _status(s), _text(s.info.get("method")), _num(s.info.get("eval_examples"))]
        lines = [_headline(s, key) for key in compare.headline_keys(s)]
        cells.append(f'<td class="text">{"".join(lines)}</td>')
        rows.append(f'<tr data-run="{html.escape(s.name)}">' + "".join(cells) + "</tr>")
    body = ['<section id="overview"><h2>Overview</h2><p class="note">Each run against its own baseline (the '
            "untuned model scored before training), by its task's headline scores; the change and its % have the "
            "sign of the change itself, and say whether it is better (losses and TER: lower is better). In the "
            "chart, baseline and final scores side by side, each headline score on its own scale.</p>"]
    if chart:
        body.append(_img(chart, "Baseline and final score per run, one panel per headline score"))
    body.append(_table(head, rows, "overview"))
    return "\n".join(body) + "</section>"


def _headline(s: RunSummary, key: str) -> str:
    """One headline score of a run: `key: baseline → final, change (%, better) mark`."""
    row = s.row(key)
    if s.zero_shot or row.final is None:
        return f"<div>{html.escape(key)}: {number(row.baseline)} <span class=base>(baseline)</span></div>"
    change, percent = row.change, compare.relative_change(row.baseline, row.final)
    if change is None:
        return f"<div>{html.escape(key)}: {html.escape(number(row.final))}</div>"
    shown = f"{percent:+.1f}%" if math.isfinite(percent) else "from 0"
    return (f"<div>{html.escape(key)}: <span class=base>{number(row.baseline)} →</span> {number(row.final)}, "
            f'<span class="{_tone(key, row.test)}">{change:+.4g}</span> <span class=ci>({shown}, '
            f"{compare.direction(key, row.baseline, row.final)})</span>{_mark(key, row.test)}</div>")


def _studies(comparison: Comparison, images: dict) -> str:
    """Per study: what it searched, its table (best first) with the test against the best, its charts."""
    parts = []
    for record in comparison.studies:
        best = record.best or {}
        shown = ", ".join(f"{key}={number(value)}" for key, value in (best.get("params") or {}).items())
        parts.append(f'<h3 id="study-{_id(record.name)}">{html.escape(study_table.title(record))}</h3>'
                     f"<p class=note>{html.escape(record.objective['key'])} ({record.objective['direction']}), "
                     f"seeds {html.escape(', '.join(map(str, record.seeds)))}, {len(record.configurations)} "
                     f"configurations; best: {html.escape(shown or 'none yet')}.</p>")
        head = "".join(f'<th class="{"text" if i == 0 or h == "trials" else ""}">{html.escape(h)}</th>'
                       for i, h in enumerate(study_table.header(record)))
        body = [f'<tr data-configuration="{html.escape(row[0].split()[0])}">' + "".join(
            f'<td class="{"text" if i in (0, len(row) - 1) else ""}">{html.escape(cell)}</td>' for i, cell in enumerate(row))
            + "</tr>" for row in study_table.rows(record)]
        parts.append(_table(head, body, "study"))
        notes = [study_table.caption(record), *study_table.failures(record), *record.notes]
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
        for name, path in images.get(record.name, {}).items():
            parts.append(_img(path, f"{record.name}: {name}"))
    return "\n".join(parts)


def _task_section(task: str, group: list[RunSummary], chart: Path | None) -> str:
    header, keys, _ = tables.task_table(group)
    head = "".join(f'<th class="{"text" if key in TEXT_COLUMNS else ""}">{html.escape(label)}</th>'
                   for label, key in zip(header, keys))
    names = iter(compare.metric_names(group))
    metric_keys = [key or next(names) for key in keys]  # a metric's column: its name
    rows = []
    for s in group:
        cells = [_score(s, name) if key is None else _status(s) if key == "status" else
                 _text(s.info.get(key)) if key in TEXT_COLUMNS else _num(s.info.get(key))
                 for key, name in zip(keys, metric_keys)]
        rows.append(f'<tr data-run="{html.escape(s.name)}">' + "".join(cells) + "</tr>")
    parts = [f'<section id="task-{_id(task)}"><h2>{html.escape(task)}</h2>',
             '<p class="note">Metric cells: baseline → final, the final score\'s 95% bootstrap interval, and the '
             "change with its paired test (* significant, n.s. not significant).</p>",
             _table(head, rows, "runs", task)]
    if chart:
        parts.append(_img(chart, f"{task}: baseline vs final per metric"))
    return "\n".join(parts) + "</section>"


def _score(s: RunSummary, name: str) -> str:
    row = s.row(name)
    if row.baseline is None and row.final is None:
        return "<td></td>"
    if row.final is None or s.zero_shot:
        return (f"<td><div>{number(row.baseline)} <span class=base>(baseline)</span></div>"
                f"<div class=ci>{interval(row.baseline_interval)}</div></td>")
    shown = (f"<span class=base>{number(row.baseline)} →</span> <b>{number(row.final)}</b>" if row.baseline is not None
             else f"<b>{number(row.final)}</b>")
    change = row.change
    tail = (f'<div><span class="{_tone(name, row.test)}">{change:+.4g}</span>{_mark(name, row.test)}</div>'
            if change is not None else "")
    return f"<td><div>{shown}</div><div class=ci>{interval(row.final_interval)}</div>{tail}</td>"


def _significance(comparison: Comparison) -> str:
    rows = tables.pair_rows(comparison)
    parts = ['<p class="note">Runs scored on the same eval set (the same example ids and references) are tested '
             "against the first of them given, the reference: an exact McNemar test for scores of 0 or 1 per example "
             "(exact match), else a paired bootstrap (1000 resamples, the same examples for both). A change is "
             f"significant when its p-value, Holm-corrected over the metrics of the comparison, is below {ALPHA} and "
             f"at least {MIN_DISCORDANT} examples score differently. Runs on different eval sets are never paired.</p>"]
    if rows:
        head = "".join(f'<th class="{"text" if _is_text(i) else ""}">{html.escape(h)}</th>'
                       for i, h in enumerate(tables.PAIR_HEADER))
        body = ["<tr>" + "".join(f'<td class="{_pair_class(i, cell)}">{html.escape(cell)}</td>'
                                 for i, cell in enumerate(row)) + "</tr>" for row in rows]
        parts.append(_table(head, body, "pairs"))
    notes = tables.pairing_notes(comparison)
    if notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>")
    return "\n".join(parts) if rows or notes else ""


def _is_text(column: int) -> bool:
    return column < 4 or tables.PAIR_HEADER[column] in ("test", "verdict")


def _pair_class(column: int, cell: str) -> str:
    verdict_column = tables.PAIR_HEADER[column] == "verdict"
    return ("text " if _is_text(column) else "") + ({"better": "better", "worse": "worse", "n.s.": "ns"}
                                                     .get(cell, "") if verdict_column else "")


def _sweeps(comparison: Comparison, images: dict) -> str:
    parts = []
    for entry in comparison.sweeps:
        header, rows = sweep_table.matrix(entry.data, entry.vs_first, _sweep_cell)
        head = "".join(f'<th class="{"text" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(header))
        body = [f'<tr><td class="text">{html.escape(label)}</td>{"".join(cells)}</tr>' for label, cells in rows]
        status = entry.data.get("status")
        parts.append(f"<h3>{html.escape(entry.name)}</h3><p class=note>{html.escape(str(entry.data.get('model')))} on "
                     f"{entry.data.get('eval_examples')} examples; every strategy on the same examples, each later one "
                     "paired with the first"
                     + (f'; <span class="{status}">{html.escape(str(status))}: {html.escape(str(entry.data.get("error")))}</span>'
                        if status != "complete" else "") + ".</p>")
        parts.append(_table(head, body, "sweep"))
        if entry.name in images:
            parts.append(_img(images[entry.name], f"{entry.name}: scores and speed per strategy"))
    return "\n".join(parts)


def _sweep_cell(key, value, bounds, test) -> str:
    tail = (f'<div class="{_tone(key, test)}">{test["delta"]:+.4g} {"*" if test["significant"] else "n.s."}</div>'
            if test else "")
    return f"<td><div>{html.escape(number(value))}</div><div class=ci>{interval(bounds)}</div>{tail}</td>"


def _curves(comparison: Comparison, drawn: dict) -> str:
    parts = []
    if drawn.get("losses"):
        parts.append(_img(drawn["losses"], "Training loss of every run"))
    for s in comparison.runs:
        if s.name in drawn["curves"]:
            best = charts.best_step(s.record)
            caption = (f"best step {best['step']} by {best.get('metric')} = {number(best.get('value'))}"
                       + (" (restored at the end)" if best.get("restored") else "")
                       + (" (the first evaluation with that value: no checkpoints were saved)" if best.get("inferred")
                          else "") if best.get("step") is not None
                       else "no best step: training.metric_for_best_model was not set")
            parts.append(f"<figure>{_img(drawn['curves'][s.name], f'{s.name}: training curves')}"
                         f"<figcaption>{html.escape(s.name)}: {html.escape(caption)}</figcaption></figure>")
    return "\n".join(parts)


def _examples(comparison: Comparison) -> str:
    parts = []
    for s in comparison.runs:
        baseline, final = s.predictions("baseline"), s.predictions("result")
        if baseline is None or final is None:
            continue
        key, gains, losses = biggest_differences(baseline, final, EXAMPLES_SHOWN)
        parts.append(f"<h3>{html.escape(s.name)}</h3>")
        if not gains and not losses:
            parts.append(f"<p class=note>The final model and the baseline score the same on every example"
                         f"{f' ({html.escape(key)})' if key else ''}.</p>")
            continue
        head = "".join(f'<th class="text">{h}</th>' for h in ("", "id", "input", "reference", "baseline", "final"))
        rows = [_example_row(kind, key, change) for kind, group in (("gain", gains), ("loss", losses))
                for change in group]
        parts.append(f"<p class=note>Ranked by the per-example {html.escape(key)} score (baseline → final).</p>")
        parts.append(_table(head, rows, "examples"))
    return "\n".join(parts)


def _example_row(kind: str, key: str, change: dict) -> str:
    tone = "better" if kind == "gain" else "worse"
    return (f'<tr><td class="text {tone}">{kind}</td>{_text(change["id"])}'
            + "".join(f'<td class="wrap">{_cut(change[field])}</td>' for field in ("input", "reference"))
            + f'<td class="wrap">{_cut(change["baseline"])}<div class=ci>{key} {number(change["score_baseline"])}</div></td>'
            + f'<td class="wrap">{_cut(change["final"])}<div class="ci {tone}">{key} {number(change["score_final"])}</div></td></tr>')


def _cut(value) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return html.escape(text if len(text) <= CUT else text[:CUT] + " …")


def _table(head: str, rows: list[str], kind: str, task: str | None = None) -> str:
    task_attr = f' data-task="{html.escape(task)}"' if task else ""
    return (f'<div class="scroll"><table class="{kind}"{task_attr}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _img(path: Path, alt: str) -> str:
    data = path.read_bytes()
    width, height = struct.unpack(">II", data[16:24])  # the PNG header's size: the page keeps its layout while loading
    return (f'<img alt="{html.escape(alt)}" width="{width}" height="{height}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def _status(s: RunSummary) -> str:
    status = str(s.info.get("status") or "")
    kind = status.split(":", 1)[0].replace(" ", "_")
    return f'<td class="wrap {html.escape(kind)}">{html.escape(status)}</td>'


def _text(value) -> str:
    return f'<td class="text">{html.escape(number(value))}</td>'


def _num(value) -> str:
    return f"<td>{html.escape(number(value))}</td>"


def _tone(key: str, test: dict | None) -> str:
    return {"better": "better", "worse": "worse", "n.s.": "ns"}.get(verdict(key, test), "")


def _mark(key: str, test: dict | None) -> str:
    if not test:
        return ""
    p = f"p={test['p_value']:.2g}" + (f", Holm {test['p_holm']:.2g}" if test.get("p_holm") is not None else "")
    text = f"* {p}" if test["significant"] else f"n.s. {p}"
    title = f"{test.get('test', 'paired bootstrap')} vs baseline, {test.get('discordant', '?')} examples differ"
    return f' <span class="{_tone(key, test)}" title="{html.escape(title)}">{text}</span>'


def _id(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)
