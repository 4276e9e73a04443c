"""Per-example scores, bootstrap intervals and paired tests equal their references (sacrebleu, the corpus metrics)."""

import itertools
import math
import random

import numpy as np
import pytest
import sacrebleu
from sacrebleu.significance import PairedTest

from hfkit import metrics
from hfkit.errors import HfkitError
from hfkit.metrics import bootstrap, from_stats
from hfkit.metrics.bootstrap import confidence_intervals, paired_bootstrap
from hfkit.metrics.per_example import example_scores

WORDS = [f"w{i}" for i in range(300)] + ["the", "a", "cat", "dog", "sat", "on", "mat", "."]


def corpus(size: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))) for _ in range(size)]


def noisy(texts: list[str], rate: float, seed: int) -> list[str]:
    """Each word replaced by a random one with probability `rate`."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) if rng.random() < rate else w for w in t.split()) for t in texts]


REFERENCES = corpus(300)
SYSTEM_A = noisy(REFERENCES, 0.3, seed=1)
SYSTEM_B = noisy(REFERENCES, 0.3, seed=2)  # as good as A: p-values well above 0.05
MIXED = ["The cat sat on the mat.", "", "Zürich's Straße ist schön 東京", "short", "a b c d e f g h"]
MIXED_REFS = [["The cat is on the mat.", "A cat sat on the mat."], ["Nothing.", "Silence."],
              ["Zürich's Straße ist schön 東京", "Die Straße."], ["a long reference sentence", "short"],
              ["a b c x e f g h", "h g f e d c b a"]]


# --- from_stats: sacrebleu's formulas, vectorised, bit for bit ---------------------------------------


def random_bleu_stats(rng: np.random.Generator, rows: int) -> list[list[int]]:
    out = []
    for _ in range(rows):
        total = rng.integers(0, 30, 4)
        if rng.random() < 0.7:
            total = np.sort(total)[::-1]  # the usual shape: fewer 4-grams than unigrams
        correct = np.minimum(total, rng.integers(0, 30, 4)) * (rng.random(4) < 0.7)  # many zero counts
        sys_len = int(total[0]) if rng.random() < 0.9 else int(rng.integers(0, 40))
        out.append([sys_len, int(rng.integers(0, 40))] + [int(c) for c in correct] + [int(t) for t in total])
    return out


BLEU_EDGES = [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, 7, 0, 0, 0, 0, 0, 0, 0, 0], [3, 7, 3, 2, 1, 0, 3, 2, 1, 0],
              [2, 7, 2, 1, 0, 0, 2, 1, 0, 0], [5, 5, 5, 0, 0, 0, 5, 4, 3, 2], [9, 4, 0, 0, 0, 0, 9, 8, 7, 6],
              [12, 10, 8, 0, 3, 0, 12, 11, 10, 9], [1, 1, 1, 0, 0, 0, 1, 0, 0, 0], [30, 40, 25, 17, 9, 4, 30, 29, 28, 27]]


@pytest.mark.parametrize("method,value,effective", [
    ("exp", None, False), ("exp", None, True), ("floor", None, False), ("floor", 0.3, True), ("add-k", None, False),
    ("add-k", 2, True), ("none", None, False), ("none", None, True)])
def test_vectorised_bleu_equals_sacrebleu_compute_score_from_stats(method, value, effective):
    metric = sacrebleu.BLEU(smooth_method=method, smooth_value=value, effective_order=effective)
    rows = BLEU_EDGES + random_bleu_stats(np.random.default_rng(len(method) + effective), 2000)
    expected = [metric._compute_score_from_stats(list(row)).score for row in rows]
    assert from_stats.bleu_scores(np.array(rows), metric).tolist() == expected  # exact, not approximate


@pytest.mark.parametrize("char_order,word_order,beta,eps", list(itertools.product([6, 3], [0, 2], [2, 1], [False, True])))
def test_vectorised_chrf_equals_sacrebleu(char_order, word_order, beta, eps):
    metric = sacrebleu.CHRF(char_order=char_order, word_order=word_order, beta=beta, eps_smoothing=eps)
    rng = np.random.default_rng(char_order + word_order + beta)
    rows = [[0] * 3 * metric.order, [5, 0, 0] * metric.order, [0, 5, 0] * metric.order, [4, 4, 4] * metric.order]
    for _ in range(1000):
        row = []
        for _ in range(metric.order):
            hyp, ref = int(rng.integers(0, 20)) * (rng.random() < 0.85), int(rng.integers(0, 20)) * (rng.random() < 0.85)
            row += [hyp, ref, int(min(hyp, ref, rng.integers(0, 20)))]
        rows.append(row)
    expected = [metric._compute_score_from_stats(list(row)).score for row in rows]
    assert from_stats.chrf_scores(np.array(rows), metric).tolist() == expected


def test_vectorised_ter_equals_sacrebleu():
    metric = sacrebleu.TER()
    rows = [[0, 0.0], [3, 0.0], [2, 4.5], [7, 3.0]] + [[int(e), r / 3] for e, r in np.random.default_rng(0).integers(0, 12, (500, 2))]
    assert from_stats.ter_scores(np.array(rows), metric).tolist() == [metric._compute_score_from_stats(r).score for r in rows]


# --- per-example scores -------------------------------------------------------------------------------


def test_sentence_bleu_chrf_ter_equal_sacrebleu_sentence_scores():
    bleu = example_scores("sacrebleu", MIXED, MIXED_REFS)["sacrebleu"]
    assert bleu == [sacrebleu.sentence_bleu(p, r).score for p, r in zip(MIXED, MIXED_REFS)]
    intl = example_scores("sacrebleu", MIXED, MIXED_REFS, {"tokenize": "intl", "smooth_method": "floor"})["sacrebleu"]
    assert intl == [sacrebleu.sentence_bleu(p, r, tokenize="intl", smooth_method="floor").score
                    for p, r in zip(MIXED, MIXED_REFS)]
    chrf = example_scores("chrf", MIXED, MIXED_REFS, {"word_order": 2})["chrf"]
    assert chrf == [sacrebleu.sentence_chrf(p, r, word_order=2).score for p, r in zip(MIXED, MIXED_REFS)]
    ter = example_scores("ter", MIXED, MIXED_REFS)["ter"]
    assert ter == [sacrebleu.sentence_ter(p, r).score for p, r in zip(MIXED, MIXED_REFS)]


def test_rouge_and_exact_match_examples_average_to_the_corpus_metric():
    args = {"tokenizer": "whitespace", "rouge_types": ["rouge1", "rougeLsum"]}
    per = example_scores("rouge", MIXED, MIXED_REFS, args)
    corpus_rouge = metrics.load("rouge").compute(predictions=MIXED, references=MIXED_REFS, **args)
    assert set(per) == {"rouge1", "rougeLsum"} and all(len(v) == 5 for v in per.values())
    for key, values in per.items():
        assert abs(sum(values) / len(values) - corpus_rouge[key]) < 1e-12
    predictions, references = ["The Cat!", "year 1999", "x-1", "no"], ["the cat", "year 2024", "x1", "yes"]
    args = {"ignore_case": True, "ignore_punctuation": True, "ignore_numbers": True}
    assert example_scores("exact_match", predictions, references, args) == {"exact_match": [1.0, 1.0, 1.0, 0.0]}
    assert example_scores("exact_match", predictions, references) == {"exact_match": [0.0, 0.0, 0.0, 0.0]}


def squad_data(seed: int = 0, size: int = 60, unanswerable: bool = True):
    """Questions (some unanswerable) and predictions: right, partly right, wrong, abstaining."""
    rng = random.Random(seed)
    references, predictions = [], []
    for i in range(size):
        answers = [] if unanswerable and i % 4 == 0 else ["the red house", "red house on the hill"]
        references.append({"id": f"q{i}", "answers": {"text": answers, "answer_start": [0] * len(answers)}})
        text = rng.choice(["The red house", "red barn", "house", "", "blue car", "red house on a hill"])
        predictions.append({"id": f"q{i}", "prediction_text": text, "no_answer_probability": rng.random()})
    return predictions, references


def test_squad_examples_average_to_the_official_scores():
    predictions, references = squad_data(unanswerable=False)
    v1 = [{"id": p["id"], "prediction_text": p["prediction_text"]} for p in predictions]
    v1[0]["id"] = "elsewhere"  # q0 has no prediction: scores 0
    per = example_scores("squad", v1, references)
    corpus_v1 = metrics.load("squad").compute(predictions=v1, references=references)
    assert per["exact_match"][0] == per["f1"][0] == 0.0
    for key in ("exact_match", "f1"):
        assert abs(sum(per[key]) / len(per[key]) - corpus_v1[key]) < 1e-9
    predictions, references = squad_data()
    for threshold in (1.0, 0.5):
        per = example_scores("squad_v2", predictions, references, {"no_answer_threshold": threshold})
        corpus_v2 = metrics.load("squad_v2").compute(predictions=predictions, references=references,
                                                     no_answer_threshold=threshold)
        for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"):
            kept = [v for v in per[key] if not math.isnan(v)]
            assert abs(sum(kept) / len(kept) - corpus_v2[key]) < 1e-9
    with pytest.raises(ValueError, match="has no prediction"):
        example_scores("squad_v2", [{**predictions[0], "id": "elsewhere"}] + predictions[1:], references)


def test_unknown_metric_and_mismatched_inputs_are_refused():
    with pytest.raises(HfkitError, match="no per-example scores for metric 'bleu'"):
        example_scores("bleu", ["a"], ["a"])
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        confidence_intervals("sacrebleu", ["a", "b"], ["a"])
    with pytest.raises(TypeError):  # the whole eval.metric_args mapping instead of the metric's own dict
        example_scores("sacrebleu", ["a"], ["a"], {"sacrebleu": {"tokenize": "intl"}})


# --- bootstrap intervals ------------------------------------------------------------------------------


def test_resampled_sums_are_the_sums_of_numpy_choice_resamples(monkeypatch):
    columns = np.random.default_rng(3).integers(0, 9, (37, 3)).astype(float)
    indices = np.random.default_rng(7).choice(37, size=(50, 37), replace=True)
    expected = columns[indices].sum(axis=1)
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 37 * 6)  # chunks of 6 resamples, then a remainder of 2
    assert np.array_equal(bootstrap.resampled_sums(columns, 50, seed=7), expected)


@pytest.mark.parametrize("name", ["sacrebleu", "chrf", "ter", "rouge", "exact_match"])
def test_intervals_contain_the_corpus_score_and_repeat_with_the_seed(name):
    predictions = SYSTEM_A[:150] + REFERENCES[150:]  # half exact: exact_match is not 0
    intervals = confidence_intervals(name, predictions, REFERENCES, n=300, seed=1)
    scores, _ = metrics.compute([name], predictions, REFERENCES)
    assert set(intervals) == set(scores)
    for key, (low, high) in intervals.items():
        assert low < scores[key] < high
    assert confidence_intervals(name, predictions, REFERENCES, n=300, seed=1) == intervals
    assert confidence_intervals(name, predictions, REFERENCES, n=300, seed=2) != intervals


def test_squad_v2_intervals_cover_each_subset():
    predictions, references = squad_data(size=120)
    intervals = confidence_intervals("squad_v2", predictions, references, n=500)
    scores, _ = metrics.compute(["squad_v2"], predictions, references)
    assert set(intervals) == set(scores) == {"exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"}
    for key, (low, high) in intervals.items():
        assert low <= scores[key] <= high and high - low > 1


def test_bleu_interval_matches_sacrebleus_own_bootstrap(monkeypatch):
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    theirs = sacrebleu.BLEU().corpus_score(SYSTEM_A, [REFERENCES], n_bootstrap=1000)
    low, high = confidence_intervals("sacrebleu", SYSTEM_A, REFERENCES, n=1000, seed=12345)["sacrebleu"]
    # same resamples; sacrebleu reports mean +- half the width between its 25th and 975th sorted scores
    assert (high - low) / 2 == pytest.approx(theirs._ci, rel=0.02)
    assert low < theirs._mean < high


# --- paired test --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sacrebleu", "chrf", "ter", "rouge", "exact_match"])
def test_identical_systems_do_not_differ(name):
    result = paired_bootstrap(name, SYSTEM_A, SYSTEM_A, REFERENCES, n=200)
    for key, row in result.items():
        assert row["a"] == row["b"] and row["delta"] == row["low"] == row["high"] == 0.0
        assert row["p_value"] == 1.0


@pytest.mark.parametrize("name", ["sacrebleu", "chrf", "ter", "rouge", "exact_match"])
def test_a_clearly_better_system_is_significant(name):
    result = paired_bootstrap(name, SYSTEM_A, REFERENCES, REFERENCES, n=500, seed=3)
    scores_a, _ = metrics.compute([name], SYSTEM_A, REFERENCES)
    for key, row in result.items():
        assert row["a"] == pytest.approx(scores_a[key], abs=1e-12)
        assert row["p_value"] < 0.05
        better = -row["delta"] if name == "ter" else row["delta"]
        assert better > 0 and row["low"] <= row["delta"] <= row["high"]
        assert (row["high"] < 0) if name == "ter" else (row["low"] > 0)
    assert paired_bootstrap(name, SYSTEM_A, REFERENCES, REFERENCES, n=500, seed=3) == result


def test_squad_v2_paired_test_uses_the_same_questions_for_both_systems():
    predictions, references = squad_data(size=120)
    perfect = [{**p, "prediction_text": (r["answers"]["text"] or [""])[0], "no_answer_probability": 0.0}
               for p, r in zip(predictions, references)]
    result = paired_bootstrap("squad_v2", predictions, perfect, references, n=300)
    assert result["exact"]["b"] == 100.0 and result["exact"]["p_value"] < 0.05
    assert set(result) == {"exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"}


def sacrebleu_paired_bs(metric, baseline, system, n=1000):
    """sacrebleu's own paired bootstrap, built as its CLI builds it (`sacrebleu -t bs`)."""
    _, results = PairedTest([("baseline", baseline), ("system", system)], {"m": metric}, [REFERENCES],
                            test_type="bs", n_samples=n)()
    return next(value for key, value in results.items() if key != "System")[1]


@pytest.mark.parametrize("name,metric", [("sacrebleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF()),
                                         ("ter", sacrebleu.TER())])
@pytest.mark.parametrize("system", ["similar", "better"])
def test_p_values_and_intervals_agree_with_sacrebleu_paired_bs(monkeypatch, name, metric, system):
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    b = SYSTEM_B if system == "similar" else noisy(REFERENCES, 0.2, seed=4)
    theirs = sacrebleu_paired_bs(metric, SYSTEM_A, b)
    ours = paired_bootstrap(name, SYSTEM_A, b, REFERENCES, n=1000, seed=12345)[name]
    assert ours["b"] == theirs.score
    # The same resamples: only sacrebleu's float32 sums can move a resample across the threshold.
    assert abs(ours["p_value"] - theirs.p_value) <= 2 / 1001
    if system == "similar":
        assert ours["p_value"] > 0.05
    else:
        assert ours["p_value"] < 0.05 and theirs.p_value < 0.05
    low, high = confidence_intervals(name, b, REFERENCES, n=1000, seed=12345)[name]
    assert (high - low) / 2 == pytest.approx(theirs.ci, rel=0.02) and low < theirs.mean < high
