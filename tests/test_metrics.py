"""hfkit's metric modules load offline and match the Hub modules' definitions."""

import pytest

from hfkit import metrics
from hfkit.errors import HfkitError


def test_exact_match_loads_offline_and_scores_between_0_and_1():
    em = metrics.load("exact_match")
    assert em.compute(predictions=["a", "b", "c", "d"], references=["a", "b", "x", "D"]) == {"exact_match": 0.5}


def test_exact_match_options():
    em = metrics.load("exact_match")
    result = em.compute(predictions=["The Cat!", "year 1999", "x-1"], references=["the cat", "year 2024", "x1"],
                        ignore_case=True, ignore_punctuation=True, ignore_numbers=True)
    assert result == {"exact_match": 1.0}
    result = em.compute(predictions=["answer: 42"], references=["42"], regexes_to_ignore=["^answer: "])
    assert result == {"exact_match": 1.0}


def test_compute_merges_results_and_unknown_metrics_are_refused():
    assert metrics.compute(["exact_match"], ["a"], ["a"]) == {"exact_match": 1.0}
    with pytest.raises(HfkitError, match="unknown metric 'bleu'"):
        metrics.load("bleu")
