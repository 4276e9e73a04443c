"""compare's paired significance, eval and zero-shot folders, the terminal table, JSON on stdout,
and report.html: its structure here, and rendered in headless Chromium where it is installed."""

import base64
import io
import json
import random
import re
import shutil
import subprocess

import pytest
from fake_runs import fake_run

from hfkit import compare
from hfkit.cli import main
from hfkit.metrics.bootstrap import paired_bootstrap

WORDS = "the cat sat on a mat dog ran in park sun moon red blue green house tree river".split()
REFERENCES = [" ".join(random.Random(i).choice(WORDS) for _ in range(random.Random(-i).randint(5, 12)))
              for i in range(80)]


def noisy(rate: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) if rng.random() < rate else w for w in text.split()) for text in REFERENCES]


WEAK, STRONG = noisy(0.6, seed=1), noisy(0.1, seed=2)
TRANSLATION = {"references": REFERENCES, "metric_names": ["sacrebleu", "chrf"]}


def translation_runs(root):
    """weak (the reference: given first), strong (clearly better), a copy of weak, and a run on other examples."""
    fake_run(root, "1-weak", "translation", None, predictions=WEAK, baseline_predictions=noisy(0.9, 3), **TRANSLATION)
    fake_run(root, "2-strong", "translation", None, predictions=STRONG, baseline_predictions=noisy(0.9, 3), **TRANSLATION)
    fake_run(root, "3-same", "translation", None, predictions=WEAK, baseline_predictions=WEAK, **TRANSLATION)
    fake_run(root, "4-other", "translation", None, predictions=WEAK[:40], references=REFERENCES[:40],
             metric_names=["sacrebleu", "chrf"])


def test_paired_tests_across_runs_and_against_the_baseline(tmp_path):
    translation_runs(tmp_path / "runs")
    comparison = compare.collect([str(tmp_path / "runs")])
    weak, strong, same, other = comparison.runs
    assert comparison.eval_sets == {"E1": ["1-weak", "2-strong", "3-same"], "E2": ["4-other"]}
    assert strong.reference == "1-weak" and same.reference == "1-weak" and weak.reference is None
    # compare's test is hfkit.metrics.bootstrap.paired_bootstrap on the rows, the function the metrics
    # tests check against sacrebleu's paired_bs: the same numbers, to the last bit
    direct = paired_bootstrap("sacrebleu", WEAK, STRONG, REFERENCES, n=1000, seed=12345)["sacrebleu"]
    assert {k: strong.vs_reference["sacrebleu"][k] for k in direct} == direct
    assert strong.vs_reference["sacrebleu"]["significant"] and strong.vs_reference["chrf"]["p_value"] < 0.05
    assert strong.vs_reference["sacrebleu"]["a"] == pytest.approx(weak.metrics["sacrebleu"][1], abs=1e-9)
    assert all(not test["significant"] and test["p_value"] == 1.0 for test in same.vs_reference.values())
    assert all(not test["significant"] for test in same.vs_baseline.values())  # final = baseline
    assert strong.vs_baseline["sacrebleu"]["significant"] and strong.vs_baseline["sacrebleu"]["delta"] > 0
    assert other.info["eval_set"] == "E2" and not other.vs_reference


def test_the_paired_p_value_agrees_with_sacrebleus_paired_bs(tmp_path, monkeypatch):
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    better = noisy(0.45, seed=7)
    fake_run(tmp_path, "a", "translation", None, predictions=WEAK, **TRANSLATION)
    fake_run(tmp_path, "b", "translation", None, predictions=better, **TRANSLATION)
    _, run_b = compare.collect([str(tmp_path / "a"), str(tmp_path / "b")]).runs
    _, results = PairedTest([("a", WEAK), ("b", better)], {"bleu": BLEU()}, [REFERENCES], test_type="bs",
                            n_samples=1000)()
    theirs = next(value for key, value in results.items() if key != "System")[1]  # as `sacrebleu -t bs` builds it
    ours = run_b.vs_reference["sacrebleu"]
    assert ours["b"] == theirs.score and abs(ours["p_value"] - theirs.p_value) <= 2 / 1001


def test_the_report_says_what_was_paired_and_what_was_not(tmp_path, capsys):
    translation_runs(tmp_path / "runs")
    assert main(["compare", str(tmp_path / "runs"), "--format", "markdown"]) == 0
    text = capsys.readouterr().out
    assert "### Paired significance" in text
    # the test, the examples that differ and the Holm-corrected p-value sit before the verdict (issue 24, item 4)
    assert re.search(r"\| E1 \| 2-strong \| 1-weak \| sacrebleu \| [\d.]+ \| [\d.]+ \| \+[\d.]+ \[[\d.]+, [\d.]+\] \| "
                     r"paired bootstrap \| \d+ \| 0\.0\d+ \| 0\.0\d+ \| better \|", text)
    assert re.search(r"\| E1 \| 3-same \| 1-weak \| chrf \| .* \| 0 \| 1 \| 1 \| n\.s\. \|", text)
    assert "eval set E1: 3 runs; each is paired with 1-weak (the first given)" in text
    assert "runs on different eval sets are never paired: 4-other (E2)" in text
    assert re.search(r"\| 2-strong \| complete \| lora \| [\d.]+ → [\d.]+ \[[\d.]+, [\d.]+\] \(\+[\d.]+ \*\)",
                     text)


def test_squad_rows_are_rescored_from_what_the_metric_saw(tmp_path):
    """SQuAD v2 pairs need each prediction's no_answer_probability: the rows keep the metric's input."""
    from hfkit.significance import metric_inputs

    references = [{"id": f"q{i}", "answers": {"text": [] if i % 3 == 0 else [f"answer {i}"],
                                               "answer_start": [] if i % 3 == 0 else [0]}} for i in range(30)]
    rows = [{"id": r["id"], "input": "?", "reference": r, "prediction": "unanswerable",
             "metric_prediction": {"id": r["id"], "prediction_text": "", "no_answer_probability": 1.0}}
            for r in references]
    predictions, refs = metric_inputs(rows)
    assert predictions[0] == {"id": "q0", "prediction_text": "", "no_answer_probability": 1.0} and refs == references
    old_rows = [{"id": r["id"], "reference": r, "prediction": "answer 1"} for r in references]  # squad v1, older hfkit
    assert metric_inputs(old_rows)[0][1] == {"id": "q1", "prediction_text": "answer 1"}


def test_eval_folders_and_zero_shot_runs_join_the_comparison(tmp_path, capsys):
    run = fake_run(tmp_path / "runs", "tuned", "translation", None, predictions=STRONG,
                   baseline_predictions=noisy(0.9, 3), **TRANSLATION)
    fake_run(run, "eval-20261201-101010", "translation", None, predictions=STRONG, status="evaluated", kind="eval",
             **TRANSLATION)
    (run / "eval-20261201-101010" / "recipe.yaml").unlink()  # `hfkit eval RUN` writes none
    fake_run(tmp_path / "runs", "zero", "translation", None, baseline_predictions=WEAK, method="zero-shot",
             status="evaluated", kind="eval", **TRANSLATION)
    assert main(["compare", str(tmp_path / "runs"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    names = [entry["run"] for entry in data["runs"]]
    assert names == ["tuned", "tuned/eval-20261201-101010", "zero"]
    rescored, zero = data["runs"][1], data["runs"][2]
    assert rescored["status"] == "evaluated" and rescored["reference"] == "tuned"
    assert rescored["metrics"]["sacrebleu"]["vs_reference"]["p_value"] == 1.0  # the same predictions
    assert zero["method"] == "zero-shot (baseline)" and zero["zero_shot"] and zero["eval_set"] == "E1"
    assert zero["metrics"]["sacrebleu"]["final"] is None and zero["metrics"]["sacrebleu"]["vs_reference"]["significant"]


@pytest.mark.parametrize("width", [80, 120])
def test_the_terminal_table_fits_the_terminal_and_wide_shows_everything(tmp_path, capsys, monkeypatch, width):
    root = tmp_path / "runs"
    translation_runs(root)
    fake_run(root, "5-failed", "translation", None, status="failed", error="RuntimeError: CUDA out of memory",
             predictions=WEAK, **TRANSLATION)
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["compare", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= width
    text = "\n".join(lines)
    assert "5-failed" in text and "failed: RuntimeError:" in text  # the status under the run's name
    assert "not shown:" in text and "--wide" in text and "eval set E1: paired with 1-weak" in text
    assert main(["compare", str(root), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert "trainable" in wide and "peak RSS" in wide and "not shown" not in wide


def test_long_run_names_are_numbered_when_they_would_wrap_over_many_lines(tmp_path, capsys, monkeypatch):
    """At 80 columns, ROUGE's four scores with loss and perplexity squeezed a run's name over six lines."""
    scores = {"rouge1": 0.41, "rouge2": 0.2, "rougeL": 0.35, "rougeLsum": 0.36, "eval_loss": 1.2, "perplexity": 3.3}
    names = ["summarization-bart-base-xsum-20261128-233533", "summarization-smollm2-xsum-20261128-233534"]
    for name in names:
        fake_run(tmp_path / "runs", name, "summarization", scores, {key: value / 2 for key, value in scores.items()})
    fake_run(tmp_path / "runs", "gen-1", "generation", {"exact_match": 0.9}, {"exact_match": 0.1})
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["compare", str(tmp_path / "runs")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80
    assert f"#2  {names[0]}" in lines and f"#3  {names[1]}" in lines  # the key under the table, names whole
    assert any(line.startswith("│ #2 ") for line in lines) and any("gen-1" in line for line in lines)  # fits: named
    assert not any("summariz" in line for line in lines if line.startswith("│"))  # no name cut into the cells


def test_json_on_stdout_stays_json_when_files_are_written(tmp_path, capsys):
    translation_runs(tmp_path / "runs")
    assert main(["compare", str(tmp_path / "runs"), "--format", "json", "--output", str(tmp_path / "out"),
                 "--resamples", "200"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)  # nothing but the JSON
    assert [r["run"] for r in data["runs"]][:2] == ["1-weak", "2-strong"] and "wrote" in out.err
    assert data["runs"][1]["metrics"]["sacrebleu"]["vs_reference"]["significant"] is True


def report(tmp_path) -> str:
    """report.html of a comparison with every section: two tasks, pairs, a failed run, curves, examples."""
    root = tmp_path / "runs"
    translation_runs(root)
    history = [{"step": s, "loss": 3 * 0.9 ** s} for s in range(1, 21)] + [
        {"step": s, "eval_loss": 2 - s / 20, "eval_exact_match": s / 20} for s in (5, 10, 15, 20)]
    dates = [f"2021-03-{d:02d}" for d in range(1, 21)]
    fake_run(root, "6-dates", "generation", {"eval_loss": 0.5}, {"eval_loss": 2.0}, predictions=dates[:15] + ["no"] * 5,
             baseline_predictions=["March"] * 20, references=dates, log_history=history,
             best={"step": 15, "metric": "eval_exact_match", "value": 0.75, "restored": True})
    fake_run(root, "7-failed", "generation", {}, status="failed", error="RuntimeError: CUDA out of memory")
    assert main(["compare", str(root), "--output", str(tmp_path / "report"), "--resamples", "200"]) == 0
    return (tmp_path / "report" / "report.html").read_text(encoding="utf-8")


def test_report_html_is_one_self_contained_page(tmp_path):
    from PIL import Image

    page = report(tmp_path)
    assert "<script" not in page and "<link" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert ids == ["overview", "task-generation", "task-translation", "significance", "curves", "examples"]
    assert page.count("overflow-x:auto") == 1 and page.count('<div class="scroll">') >= 5
    assert 'class="wrap failed">failed: RuntimeError: CUDA out of memory' in page
    assert "eval_loss (lower is better)" in page
    assert "train time (s)" in page and "peak RSS (MB)" in page and "eval examples" in page
    assert "best step 15 by eval_exact_match" in page and "gain" in page and "2021-03-01" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5  # overview, two tasks, every run's losses, one run's curves: each decodes as a PNG
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.verify()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# Added to a copy of the page (the report itself has no script): what a reader would see, written into the DOM.
PROBE = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.pageWidth = document.documentElement.scrollWidth;
  document.body.dataset.viewWidth = window.innerWidth;
  const overview = document.querySelector("table.overview");  // every column in view, no sideways scroll
  document.body.dataset.overviewHidden = Math.max(0, overview.scrollWidth - overview.parentElement.clientWidth);
});</script></body>"""


def chromium(args: list[str], tmp_path, timeout: int = 120) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a new, empty profile each time
    result = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [800, 1400])
def test_report_renders_in_chromium(tmp_path, width):
    import numpy as np
    from PIL import Image

    page = report(tmp_path).replace("</body>", PROBE)
    probed = tmp_path / "probed.html"
    probed.write_text(page, encoding="utf-8")
    dom = chromium([f"--window-size={width},1200", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                   tmp_path)
    body = re.search(r"<body([^>]*)>", dom).group(1)
    found = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body))
    assert int(found["images"]) == 5 and found["images-loaded"] == found["images"]  # every chart decoded
    assert int(found["page-width"]) <= int(found["view-width"])  # wide tables scroll in their box, the page does not
    assert found["overview-hidden"] == "0"  # at 800 px a column per metric showed 2 of 7; now one row per metric
    assert dom.count("<table") >= 6
    for run in ("1-weak", "2-strong", "3-same", "4-other", "6-dates", "7-failed"):
        assert dom.count(f'data-run="{run}"') == 2  # a row in the overview and in its task's table

    shot = tmp_path / f"shot-{width}.png"
    chromium([f"--window-size={width},2400", f"--screenshot={shot}", (tmp_path / "report" / "report.html").as_uri()],
             tmp_path)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[1] == width
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    ink = (pixels.min(axis=2) < 200).mean()  # share of pixels clearly darker than the white page
    assert colours > 200 and ink > 0.05, (colours, ink)


def test_the_overview_chart_draws_scores_baseline_beside_final_each_on_its_scale(tmp_path):
    """The old chart mixed a linear and a log axis of relative changes: a loss drop drawn as +99%, a gain
    'from 0' at an arbitrary length, BLEU at +4401% dwarfing the rest, loss and perplexity taking 4 of 7 bars."""
    from PIL import Image

    from hfkit import charts

    root = tmp_path / "runs"
    translation_runs(root)
    fake_run(root, "6-dates", "generation", {"eval_loss": 0.0074, "perplexity": 1.0074, "exact_match": 0.983},
             {"eval_loss": 1.012, "perplexity": 2.751, "exact_match": 0.0})
    fake_run(root, "7-text", "generation", {"eval_loss": 3.0, "perplexity": 20.1}, {"eval_loss": 3.4, "perplexity": 30.0},
             metric_names=[])
    fake_run(root, "8-zero", "generation", None, baseline={"exact_match": 0.0}, method="zero-shot", kind="eval",
             status="evaluated")
    comparison = compare.collect([str(root)], resamples=200)
    panels = charts.overview_panels(comparison)
    assert list(panels) == [("sacrebleu", "0-100"), ("chrf", "0-100"), ("exact_match", "fraction, 0-1"),
                            ("perplexity", "perplexity, lower is better")]  # headline scores; a loss at most once
    runs_by_name = {s.name: s for s in comparison.runs}
    for (name, _), entries in panels.items():
        for run, before, after, mark, bounds in entries:  # every bar is a score the tables show
            assert (before, after) == runs_by_name[run].metrics[name] and run != "8-zero"
    assert [entry[0] for entry in panels[("perplexity", "perplexity, lower is better")]] == ["7-text"]
    strong = next(entry for entry in panels[("sacrebleu", "0-100")] if entry[0] == "2-strong")
    assert strong[3] == "*" and strong[4] == list(runs_by_name["2-strong"].intervals["sacrebleu"][1])
    path = charts.overview_chart(comparison, tmp_path / "overview.png")
    with Image.open(path) as image:
        assert image.width >= 900 and image.height >= 600  # four panels on a grid of three columns


def test_the_best_step_comes_from_the_log_when_no_checkpoint_kept_it():
    """Trainer keeps the best value but not its step when nothing is saved (save_strategy: no)."""
    from hfkit.charts import best_step
    from hfkit.record import RunRecord

    history = [{"step": 10, "eval_exact_match": 0.8}, {"step": 30, "eval_exact_match": 1.0},
               {"step": 50, "eval_exact_match": 1.0}]
    record = RunRecord(best={"step": None, "metric": "eval_exact_match", "value": 1.0, "restored": False},
                       log_history=history)
    assert best_step(record) == {"step": 30, "metric": "eval_exact_match", "value": 1.0, "restored": False,
                                 "inferred": True}
    assert best_step(RunRecord(log_history=history)) == {}


def test_a_broken_predictions_line_is_named_not_called_a_missing_file(tmp_path, capsys):
    run = fake_run(tmp_path / "runs", "tuned", "translation", None, predictions=STRONG, baseline_predictions=WEAK,
                   **TRANSLATION)
    lines = (run / "predictions.jsonl").read_text().splitlines()
    lines[6] = lines[6][:-5]  # one line cut short
    (run / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    assert main(["compare", str(run), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "tuned: not paired: predictions.jsonl: line 7 is not valid JSON (" in out and "no predictions file" not in out
    assert out.count("line 7 is not valid JSON") == 1  # said once, though the baseline test and the report read it too
