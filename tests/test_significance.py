"""Comparison that knows its n and its units: exact McNemar for 0/1 scores, a minimum of differing
examples, Holm's correction, losses of different kinds apart, signs that agree, headline overview;
squad_v2 thresholds in float64 and perplexity above its cap shown as a bound."""

import io
import json
import math

import numpy as np
import pytest
from fake_runs import fake_run
from scipy.stats import binomtest

from hfkit import compare, metrics, significance
from hfkit.cli import main
from hfkit.significance import Predictions, holm, paired_test


def rows_of(predictions, references) -> Predictions:
    return Predictions(path=None, rows=[{"id": f"ex{i}", "reference": r, "prediction": p}
                                        for i, (p, r) in enumerate(zip(predictions, references))])


def test_exact_match_pairs_get_the_exact_mcnemar_test_on_their_discordant_examples():
    rng = np.random.default_rng(0)
    for _ in range(5):
        right_a, right_b = rng.random(60) < 0.5, rng.random(60) < 0.7  # synthetic 0/1 outcomes of two systems
        references = [f"answer {i}" for i in range(60)]
        a = rows_of([r if ok else "wrong" for r, ok in zip(references, right_a)], references)
        b = rows_of([r if ok else "wrong" for r, ok in zip(references, right_b)], references)
        result = paired_test(a, b, ["exact_match"], None, resamples=200)["exact_match"]
        only_b, only_a = int((right_b & ~right_a).sum()), int((right_a & ~right_b).sum())
        assert result["test"] == "exact McNemar" and result["discordant"] == only_a + only_b
        assert result["p_value"] == pytest.approx(binomtest(only_b, only_a + only_b, 0.5).pvalue, abs=1e-12)
        assert result["p_bootstrap"] == paired_test(a, b, ["exact_match"], None, 200)["exact_match"]["p_bootstrap"]


def test_six_discordant_pairs_five_one_way_are_not_significant():
    """The case the audit found: the bootstrap said p = 0.047 on 6 discordant pairs; the exact test says 0.22."""
    references = [f"r{i}" for i in range(30)]
    a = ["x" if i < 5 else r for i, r in enumerate(references)]  # a misses 0-4
    b = ["x" if i == 29 else r for i, r in enumerate(references)]  # b misses only 29
    result = paired_test(rows_of(a, references), rows_of(b, references), ["exact_match"], None, 1000)["exact_match"]
    assert result["discordant"] == 6 and (result["b_better"], result["a_better"]) == (5, 1)
    assert result["p_value"] == pytest.approx(0.21875) and not result["significant"]


def squad_v2_rows(texts):
    references = [{"id": f"q{i}", "answers": {"text": [] if i >= 4 else [f"answer number {i}"],
                                              "answer_start": [] if i >= 4 else [0]}} for i in range(7)]
    rows = [{"id": r["id"], "reference": r, "prediction": t,
             "metric_prediction": {"id": r["id"], "prediction_text": t, "no_answer_probability": 0.0}}
            for r, t in zip(references, texts)]
    return Predictions(path=None, rows=rows)


def test_a_change_on_one_example_of_seven_is_never_marked_significant():
    """HasAns_f1 8.33 -> 0 on 7 examples, one of which changed, was flagged at p = 0.038."""
    before = squad_v2_rows(["number", "x", "x", "x", "", "", ""])  # a partial answer to q0 only
    after = squad_v2_rows(["x", "x", "x", "x", "", "", ""])
    results = paired_test(before, after, ["squad_v2"], None, 1000)
    changed = results["HasAns_f1"]
    assert changed["a"] == pytest.approx(100 * 0.5 / 4) and changed["b"] == 0.0 and changed["discordant"] == 1
    assert not changed["significant"] and all(not r["significant"] for r in results.values())
    assert {r["test"] for k, r in results.items() if "exact" in k} == {"exact McNemar"}
    # six keys are one family: each p-value is Holm-corrected
    assert all(r["p_holm"] >= r["p_value"] for r in results.values())


def test_holm_matches_rs_p_adjust():
    # p.adjust(c(0.01, 0.02, 0.03, 0.04, 0.05), "holm") in R: 0.05 0.08 0.09 0.09 0.09
    assert holm([0.01, 0.02, 0.03, 0.04, 0.05]) == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.09])
    assert holm([0.04, 0.5, 0.001]) == pytest.approx([0.08, 0.5, 0.003])
    adjusted = holm([0.02, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)


def test_paired_bootstrap_metrics_need_six_differing_examples(tmp_path):
    references = [f"the cat sat on mat number {i}" for i in range(40)]
    better = references[:]
    worse = references[:]
    for i in range(5):
        worse[i] = "nothing like it"
    result = paired_test(rows_of(worse, references), rows_of(better, references), ["chrf"], None, 1000)["chrf"]
    assert result["test"] == "paired bootstrap" and result["discordant"] == 5
    assert result["p_value"] < 0.05 and not result["significant"]  # a small p, but five examples are too few
    for i in range(5, 12):
        worse[i] = "nothing like it"
    result = paired_test(rows_of(worse, references), rows_of(better, references), ["chrf"], None, 1000)["chrf"]
    assert result["discordant"] == 12 and result["significant"]


# The comparison's units and signs -------------------------------------------------------------------------
def test_span_loss_and_token_loss_never_share_a_column_and_signs_agree(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "extractive", "qa", {"eval_span_loss": 1.2, "exact_match": 80.0, "f1": 85.0},
             {"eval_span_loss": 5.9, "exact_match": 0.0, "f1": 4.1}, metric_names=["squad"])
    generative = fake_run(root, "generative", "qa", {"eval_loss": 67.3, "exact_match": 98.3, "f1": 98.3},
                          {"eval_loss": 32.2, "exact_match": 0.0, "f1": 12.2}, metric_names=["squad"])
    with (generative / "recipe.yaml").open("a") as recipe:
        recipe.write("qa: {mode: generative}\n")
    # an extractive run written before the span loss had its own name
    fake_run(root, "older", "qa", {"eval_loss": 1.0, "exact_match": 70.0, "f1": 75.0}, metric_names=["squad"])
    assert main(["compare", str(root), "--format", "markdown"]) == 0
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| run |"))
    assert "eval_span_loss (lower is better)" in header and "eval_loss (lower is better)" in header
    summaries = {s.name: s for s in compare.collect([str(root)], resamples=0).runs}
    assert summaries["older"].metrics["eval_span_loss"] == (None, 1.0) and "eval_loss" not in summaries["older"].metrics
    assert summaries["generative"].metrics["eval_loss"] == (32.2, 67.3)
    assert header.index("f1") < header.index("eval_span_loss")  # the task's own scores first
    from hfkit.charts import unit

    assert unit("eval_span_loss") == "nats per window, mean of start and end, lower is better"
    assert unit("eval_loss") == "nats per target token, lower is better"
    assert compare.relative_change(32.2, 67.3) == pytest.approx(109.0, abs=0.05)  # the sign of the change itself
    assert compare.direction("eval_loss", 32.2, 67.3) == "worse" and compare.direction("f1", 12.2, 98.3) == "better"
    assert main(["compare", str(root), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert "+35.1</span> <span class=ci>(+109.0%, worse)" not in page  # the loss is no headline score of qa
    assert "(+705.7%, better)" in page  # f1 12.2 -> 98.3


def test_the_overview_shows_the_task_first_and_each_tasks_headline_scores(tmp_path, capsys):
    root = tmp_path / "runs"
    fake_run(root, "tr", "translation", {"sacrebleu": 39.4, "chrf": 59.5, "eval_loss": 1.1},
             {"sacrebleu": 0.87, "chrf": 15.5, "eval_loss": 2.4}, metric_names=["sacrebleu", "chrf"])
    fake_run(root, "qa-v2", "qa", {k: 50.0 for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact",
                                                     "NoAns_f1")}, {"exact": 10.0, "f1": 20.0}, metric_names=["squad_v2"])
    fake_run(root, "text", "generation", {"eval_loss": 3.0, "perplexity": 20.1}, {"eval_loss": 3.4, "perplexity": 30.0},
             metric_names=[])
    assert main(["compare", str(root), "--format", "html"]) == 0
    page = capsys.readouterr().out
    overview = page[page.index('<section id="overview">'):page.index("</section>")]
    assert overview.index('<th class="text">task</th>') < overview.index('<th class="text">run</th>')
    assert "sacrebleu:" in overview and "chrf:" in overview and "exact:" in overview and "f1:" in overview
    assert "HasAns" not in overview and "eval_loss" not in overview  # subsets and losses stay in the task tables
    assert "perplexity:" in overview  # a run scored by loss only shows perplexity
    assert "(-33.0%, better)" in overview  # perplexity 30 -> 20.1: down, and better


# 11. Float64 thresholds, perplexity's cap -------------------------------------------------------------------
def test_squad_v2_thresholds_stay_float64():
    references = [{"id": "1", "answers": {"text": ["x"], "answer_start": [0]}},
                  {"id": "2", "answers": {"text": [], "answer_start": []}}]
    predictions = [{"id": "1", "prediction_text": "x", "no_answer_probability": 0.1},
                   {"id": "2", "prediction_text": "y", "no_answer_probability": 0.9}]
    scores = metrics.load("squad_v2").compute(predictions=predictions, references=references)
    assert scores["best_exact"] == 100.0 and scores["best_exact_thresh"] == 0.1  # not 0.10000000149
    predictions[1]["no_answer_probability"] = 0.9000000001  # above a threshold of 0.9 in float64 only
    corpus = metrics.load("squad_v2").compute(predictions=predictions, references=references, no_answer_threshold=0.9)
    from hfkit.metrics.per_example import example_scores

    per_example = example_scores("squad_v2", predictions, references, {"no_answer_threshold": 0.9})
    assert corpus["exact"] == sum(per_example["exact"]) / 2 == 100.0


def test_perplexity_above_its_cap_is_a_bound_not_a_number(tmp_path, capsys):
    from hfkit.console import results_table
    from hfkit.record import Evaluation
    from hfkit.scoring import perplexity
    from hfkit.trainer import logged

    assert perplexity(2.0) == math.exp(2.0) and perplexity(60.0) == ">5.18e+21"
    assert logged(perplexity(60.0)) == float("inf") and logged(3.0) == 3.0 and logged("text") is None
    from rich.console import Console

    console = Console(width=200, record=True, file=io.StringIO())
    console.print(results_table(Evaluation(metrics={"perplexity": ">5.18e+21"}), Evaluation(metrics={"perplexity": 9.5}),
                                "t"))
    assert ">5.18e+21" in console.export_text()
    fake_run(tmp_path / "runs", "untrained", "generation", {"perplexity": 12.0}, {"perplexity": ">5.18e+21"},
             metric_names=[])
    assert main(["compare", str(tmp_path / "runs"), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["runs"][0]["metrics"]["perplexity"]
    assert shown["baseline"] == ">5.18e+21" and shown["delta"] is None
