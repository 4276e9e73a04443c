"""The metric registry: a metric is one MetricSpec, shipped or a plug-in (module:ATTRIBUTE or an entry
point), and gets intervals, paired tests, charts, the model card and validation like hfkit's own."""

import math
import sys
import textwrap

import numpy as np
import pytest
import sacrebleu
from fake_runs import fake_run
from support import jsonl, record_of, run_hfkit, tiny_recipe

from hfkit import compare, metrics, significance
from hfkit.charts import unit
from hfkit.cli import main
from hfkit.errors import HfkitError
from hfkit.metrics import MetricSpec, bootstrap, registry
from hfkit.metrics.per_example import example_scores

LENGTH_RATIO = """\
from hfkit.metrics import MetricSpec
def per_example(prediction, reference):
    return len(prediction) / max(1, len(reference))
METRIC = MetricSpec(name="length_ratio", per_example=per_example, aggregate="mean",
                    higher_is_better=True, scale=1.0)
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path (as PYTHONPATH puts it) holding lenratio.py, the minimal plug-in."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "lenratio.py").write_text(LENGTH_RATIO)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in [n for n in registry._loaded if ":" in n]:
        registry._loaded.pop(name)
    for module in folder.glob("*.py"):
        sys.modules.pop(module.stem, None)


def test_a_plugin_metric_is_scored_in_a_run_with_its_interval_paired_test_and_card(tiny_llama, tmp_path, plugin_dir,
                                                                                   capsys):
    recipe = tiny_recipe(tmp_path, tiny_llama)
    result = run_hfkit("train", str(recipe), "eval.metrics=[exact_match,lenratio:METRIC]", "output.timestamp=false",
                       cwd=tmp_path, env_extra={"PYTHONPATH": str(plugin_dir)})
    assert result.returncode == 0, result.stderr
    run = tmp_path / "runs" / "generation-tiny"
    record = record_of(run)
    assert record.metric_names == ["exact_match", "lenratio:METRIC"]
    rows = jsonl(run / "predictions.jsonl")
    ratios = [len(r["prediction"]) / max(1, len(r["reference"])) for r in rows]
    assert [r["scores"]["length_ratio"] for r in rows] == ratios
    assert record.final.metrics["length_ratio"] == pytest.approx(sum(ratios) / len(ratios), abs=1e-12)
    low, high = record.final.intervals["length_ratio"]
    assert low <= record.final.metrics["length_ratio"] <= high
    # compare pairs the final model with its baseline on the plug-in's key, and labels its unit
    summary = compare.collect([str(run)]).runs[0]
    tested = summary.vs_baseline["length_ratio"]
    assert tested["test"] == "paired bootstrap" and 0 < tested["p_value"] <= 1 and "p_holm" in tested
    assert unit("length_ratio", record.metric_names) == "0-1"
    assert main(["compare", str(run), "--format", "markdown"]) == 0
    assert "length_ratio" in capsys.readouterr().out
    assert main(["push", str(run), "--repo-id", "me/tiny", "--dry-run", str(tmp_path / "up")]) == 0
    card = (tmp_path / "up" / "README.md").read_text()
    assert f"{record.final.metrics['length_ratio']:.4f} [{low:.4f}, {high:.4f}]" in card


def test_validation_imports_and_checks_a_plugin_before_any_model_loads(tmp_path, plugin_dir, capsys):
    (plugin_dir / "broken.py").write_text("from hfkit.metrics import MetricSpec\n"
                                          "METRIC = MetricSpec(name='broken', per_example=lambda p, r: 1 / 0)\n"
                                          "NOT_A_SPEC = 3\n")
    cases = {"lenratio:NOPE": "module 'lenratio' has no attribute 'NOPE'",
             "no_such_module:METRIC": "no module named 'no_such_module'; put its folder on PYTHONPATH",
             "broken:NOT_A_SPEC": "'broken:NOT_A_SPEC' is a int, not an hfkit.metrics.MetricSpec",
             "broken:METRIC": "eval.metrics: broken:METRIC fails on a one-example input (ZeroDivisionError",
             "macro_f1": None, "lenratio:METRIC": None}
    (tmp_path / "t.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')  # the data file exists
    for name, message in cases.items():
        recipe = tmp_path / "r.yaml"  # the model does not exist: validation stops at the metric first
        recipe.write_text(f"task: generation\nmodel: {{name_or_path: {tmp_path / 'absent'}}}\n"
                          f"data: {{train_file: t.jsonl}}\neval: {{metrics: [exact_match, '{name}']}}\n")
        code = main(["validate", str(recipe)])
        err = capsys.readouterr().err
        if message is None:
            assert "eval.metrics" not in err
        else:
            assert code == 2 and message in err and "Traceback" not in err
    (plugin_dir / "lenient.py").write_text(LENGTH_RATIO.replace("reference):", "reference, floor=1):")
                                           .replace("max(1,", "max(floor,"))
    recipe.write_text("task: generation\nmodel: {name_or_path: m}\ndata: {train_file: t.jsonl}\n"
                      "eval: {metrics: ['lenient:METRIC'], metric_args: {'lenient:METRIC': {flor: 2}}}\n")
    assert main(["validate", str(recipe)]) == 2
    assert "eval.metric_args.lenient:METRIC.flor: lenient:METRIC has no option 'flor'; did you mean 'floor'?" in \
        capsys.readouterr().err


def test_a_plugin_that_compares_squad_answers_is_refused_for_text_tasks(tmp_path, plugin_dir):
    (plugin_dir / "qa_plugin.py").write_text(
        "from hfkit.metrics import MetricSpec\n"
        "METRIC = MetricSpec(name='answered', references='squad', per_example=lambda p, r: float(bool(p['prediction_text'])))\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: translation\nmodel: {name_or_path: m}\n"
                      "data: {train_file: t.jsonl, source_lang: en, target_lang: fr}\neval: {metrics: ['qa_plugin:METRIC']}\n")
    from hfkit.recipe import load_recipe

    with pytest.raises(HfkitError, match="qa_plugin:METRIC cannot score task translation"):
        load_recipe(recipe)


def test_an_installed_packages_entry_point_names_a_metric(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "wordcount_metric-0.1.dist-info").mkdir(parents=True)
    (site / "wordcount_metric-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: wordcount-metric\n"
                                                                      "Version: 0.1\n")
    (site / "wordcount_metric-0.1.dist-info" / "entry_points.txt").write_text("[hfkit.metrics]\nwords = wordcount_metric:METRIC\n")
    (site / "wordcount_metric.py").write_text(
        "from hfkit.metrics import MetricSpec\n"
        "METRIC = MetricSpec(name='words', higher_is_better=False, per_example=lambda p, r: abs(len(p.split()) - len(r.split())))\n")
    monkeypatch.syspath_prepend(str(site))
    registry._entry_points.cache_clear()
    try:
        assert "words" in metrics.names() and metrics.get("words").name == "words"
        assert metrics.compute(["words"], ["a b c", "a"], ["a b", "a"])[0] == {"words": 0.5}
        assert metrics.lower_is_better("words") and metrics.lower_is_better("eval_words")
    finally:
        registry._entry_points.cache_clear()
        registry._loaded.pop("words", None)
        sys.modules.pop("wordcount_metric", None)


def test_a_spec_that_cannot_work_says_why_when_it_is_made():
    with pytest.raises(ValueError, match="scale must be 1.0"):
        MetricSpec(name="x", per_example=len, scale=10)
    with pytest.raises(ValueError, match="aggregate must be 'mean', Statistics"):
        MetricSpec(name="x", per_example=len, aggregate="median")
    with pytest.raises(ValueError, match="binary and overview name keys it does not report: y"):
        MetricSpec(name="x", per_example=len, binary=("y",))


# --- macro-F1 and chrF++, each one file in hfkit/metrics/builtin ---------------------------------------------


def sklearn_macro_f1(predictions, references):
    """scikit-learn's f1_score(average="macro"), written out: F1 per label of the union, averaged."""
    labels = sorted(set(predictions) | set(references))
    f1 = []
    for label in labels:
        tp = sum(p == r == label for p, r in zip(predictions, references))
        fp = sum(p == label != r for p, r in zip(predictions, references))
        fn = sum(r == label != p for p, r in zip(predictions, references))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1) / len(f1)


LABELS = ["positive", "negative", "neutral"]


def label_data(seed, size=120, accuracy=0.6):
    rng = np.random.default_rng(seed)
    references = [LABELS[i] for i in rng.choice(3, size, p=[0.6, 0.3, 0.1])]
    predictions = [r if rng.random() < accuracy else LABELS[int(rng.integers(3))] for r in references]
    return predictions, references


def test_macro_f1_is_not_a_mean_of_example_scores_and_each_resample_recomputes_it():
    predictions, references = label_data(0)
    scored = metrics.get("macro_f1").score(predictions, references)
    assert scored.scores["macro_f1"] == pytest.approx(sklearn_macro_f1(predictions, references), abs=1e-12)
    assert scored.examples["macro_f1"] == [float(p == r) for p, r in zip(predictions, references)]
    # not the mean of those (accuracy, 0.6 here): "positive" has F1 2*6/(10+6), "negative" 0
    assert metrics.compute(["macro_f1"], ["positive"] * 10, ["positive"] * 6 + ["negative"] * 4)[0] == {
        "macro_f1": 0.375}
    # the interval is the quantiles of macro-F1 recomputed on each resample's examples
    expected = [sklearn_macro_f1([predictions[i] for i in row], [references[i] for i in row])
                for chunk in bootstrap.draws(len(references), 200, 7) for row in chunk]
    low, high = bootstrap.intervals(scored, n=200, seed=7)["macro_f1"]
    assert (low, high) == pytest.approx(tuple(np.quantile(expected, [0.025, 0.975])), abs=1e-12)
    assert metrics.compute(["macro_f1"], ["A", "b"], ["a", "b"], {"macro_f1": {"ignore_case": True}})[0] == {
        "macro_f1": 1.0}


def test_macro_f1_gets_a_paired_test_on_the_same_resamples():
    predictions, references = label_data(1, size=200)
    same = bootstrap.paired_bootstrap("macro_f1", predictions, predictions, references, n=200)["macro_f1"]
    assert same["delta"] == same["low"] == same["high"] == 0.0 and same["p_value"] == 1.0
    rows = lambda answers: significance.Predictions(None, [{"id": i, "reference": r, "prediction": p}  # noqa: E731
                                                          for i, (p, r) in enumerate(zip(answers, references))])
    tested = significance.paired_test(rows(predictions), rows(references), ["macro_f1"], None, 500)["macro_f1"]
    assert tested["b"] == 1.0 and tested["delta"] > 0 and tested["low"] > 0 and tested["significant"]
    assert tested["test"] == "paired bootstrap"  # macro-F1 is no right/wrong score: no McNemar


def test_chrfpp_is_sacrebleus_chrf_with_word_bigrams():
    predictions = ["The cat sat on the mat.", "Le chat est assis.", ""]
    references = ["A cat sat on the mat.", "Le chat s'assoit.", "Nothing."]
    scores, details = metrics.compute(["chrfpp"], predictions, references)
    assert scores["chrfpp"] == sacrebleu.corpus_chrf(predictions, [references], word_order=2).score
    assert "nw:2" in details["chrfpp_signature"]
    assert example_scores("chrfpp", predictions, references)["chrfpp"] == [
        sacrebleu.sentence_chrf(p, [r], word_order=2).score for p, r in zip(predictions, references)]


# --- the registry backs what used to switch on names ---------------------------------------------------------


def test_directions_scales_and_overview_keys_come_from_the_specs():
    assert metrics.lower_is_better("ter") and metrics.lower_is_better("eval_ter") and metrics.lower_is_better("perplexity")
    assert metrics.lower_is_better("eval_loss") and metrics.lower_is_better("eval_span_loss")
    assert not metrics.lower_is_better("sacrebleu") and not metrics.lower_is_better("HasAns_f1")
    assert unit("exact_match", ["squad"]) == "0-100" and unit("exact_match") == "fraction, 0-1"
    assert unit("rougeL") == "F-measure, 0-1" and unit("ter") == "0-100, lower is better"
    assert unit("perplexity") == "perplexity, lower is better"
    assert metrics.get("squad_v2").binary == ("exact", "HasAns_exact", "NoAns_exact")
    assert metrics.get("rouge").overview == ("rougeL",)
    assert metrics.headline_names("rouge") == ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    assert "perplexity" not in metrics.names()  # reported from the loss, never chosen


def test_one_computation_gives_scores_examples_and_intervals():
    predictions, references = ["a b c d", "x y z", ""], ["a b c d", "x y w", "nothing"]
    results = metrics.score(["sacrebleu", "rouge", "exact_match"], predictions, references, resamples=100)
    assert set(results.scores) == set(results.intervals) == set(results.examples)
    assert results.examples["exact_match"] == [1.0, 0.0, 0.0]
    assert results.scores["sacrebleu"] == sacrebleu.corpus_bleu(predictions, [references]).score
    assert results.examples["sacrebleu"] == [sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(predictions, references)]
    assert math.isclose(results.scores["rouge1"], sum(results.examples["rouge1"]) / 3)


def test_fake_runs_with_a_plugin_compare_like_shipped_ones(tmp_path, plugin_dir, capsys):
    references = [f"reference sentence number {i}" for i in range(30)]
    fake_run(tmp_path / "runs", "plug", "generation", None, None, references=references,
             predictions=[r + " and more" for r in references], baseline_predictions=["short"] * 30,
             metric_names=["lenratio:METRIC"])
    assert main(["compare", str(tmp_path / "runs"), "--format", "json"]) == 0
    import json

    shown = json.loads(capsys.readouterr().out)["runs"][0]["metrics"]["length_ratio"]
    assert shown["final_interval"] and shown["vs_baseline"]["significant"] and not shown["lower_is_better"]
