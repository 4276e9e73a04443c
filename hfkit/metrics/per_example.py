"""Per-example scores for hfkit's metrics: which examples a model gets wrong, and the raw material
of bootstrap intervals and paired tests.

`example_scores(name, predictions, references, metric_args)` takes the inputs and the options of
`hfkit.metrics.load(name).compute(...)` (`metric_args` is that metric's own dict, i.e.
`eval.metric_args[name]`) and returns, per headline key, one float per example, in input order:

- sacrebleu: sentence BLEU (0-100), equal to `sacrebleu.sentence_bleu`: the metric_args' tokenizer,
  lower-casing and smoothing (default `exp`, the NIST/mteval "method 3": the k-th n-gram order
  with no match gets precision 1 / (2^k * its n-gram count) instead of 0), and effective order
  always on (orders the sentence is too short for are left out), as sentence_bleu does; a
  `use_effective_order` given for the corpus score is ignored here.
- chrf, ter: sentence chrF / TER (0-100), equal to sacrebleu's `sentence_score`.
- rouge: each ROUGE type's F-measure (0-1); their mean is the corpus `rouge`.
- exact_match: 1.0 or 0.0 after the metric's normalisation options; the mean is `exact_match`.
- squad: exact_match and f1 per question (0-100, official v1.1 normalisation; no prediction: 0).
- squad_v2: exact and f1 per question (0-100, after `no_answer_threshold`), and HasAns_exact,
  HasAns_f1, NoAns_exact, NoAns_f1 holding the same numbers for questions of that kind and NaN for
  the others (so each key's NaN-skipping mean is the corpus number); every question needs a
  prediction (the corpus metric fails on HasAns/NoAns otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hfkit.errors import HfkitError
from hfkit.metrics import from_stats, options
from hfkit.metrics.references import reference_streams
from hfkit.metrics.squad_answers import exact, f1_v1, f1_v2, normalize_answer

SUPPORTED = ("sacrebleu", "chrf", "ter", "rouge", "exact_match", "squad", "squad_v2")


def example_scores(name: str, predictions: list, references: list,
                   metric_args: dict[str, Any] | None = None) -> dict[str, list[float]]:
    """One score per example for each headline key of metric `name` (see the module docstring)."""
    args = dict(metric_args or {})
    check_inputs(name, predictions, references)
    if name in options.SACREBLEU_BUILDERS:
        if name == "sacrebleu":
            args["use_effective_order"] = True  # as sacrebleu.sentence_bleu
        metric = options.SACREBLEU_BUILDERS[name](**args)
        stats = np.asarray(sentence_stats(metric, predictions, references), dtype=np.float64)
        return {name: from_stats.scores(stats, metric).tolist()}
    if name == "rouge":
        return options.rouge_f_measures(predictions, references, **args)
    if name == "exact_match":
        predicted = options.exact_match_normalize(predictions, **args)
        expected = options.exact_match_normalize(references, **args)
        return {"exact_match": [float(p == r) for p, r in zip(predicted, expected)]}
    if name == "squad":
        return _squad_v1(predictions, references, **args)
    return _squad_v2(predictions, references, **args)


def sentence_stats(metric, predictions: list, references: list | None) -> list[list]:
    """sacrebleu's per-sentence sufficient statistics, one list per prediction.

    `metric._aggregate_and_compute(stats)` is the corpus score; `from_stats` turns a row, or a sum
    of rows, into a score. Uses sacrebleu's `_extract_corpus_statistics`, as its own significance
    tests do. `references=None` uses those cached by `cache_references` (one pass for two systems).
    """
    streams = reference_streams(list(references)) if references is not None else None
    return metric._extract_corpus_statistics(list(predictions), streams)


def cache_references(metric, references: list):
    """`metric` with the references' n-grams (or words) extracted once, as sacrebleu's
    `references=` argument does; `sentence_stats(metric, predictions, None)` then reuses them."""
    metric._ref_cache = metric._cache_references(reference_streams(list(references)))
    return metric


def check_inputs(name: str, predictions: list, references: list) -> None:
    """A metric with per-example scores, one prediction per reference, at least one."""
    if name not in SUPPORTED:
        raise HfkitError(f"no per-example scores for metric {name!r}; hfkit has them for {', '.join(SUPPORTED)}")
    if len(predictions) != len(references):  # as `evaluate` requires, SQuAD's included
        raise ValueError(f"{name}: {len(predictions)} predictions but {len(references)} references")
    if not references:
        raise ValueError(f"{name}: no examples to score")


def _squad_v1(predictions, references) -> dict[str, list[float]]:
    predicted = {p["id"]: p["prediction_text"] for p in predictions}
    scores: dict[str, list[float]] = {"exact_match": [], "f1": []}
    for reference in references:
        prediction, golds = predicted.get(reference["id"]), reference["answers"]["text"]
        found = prediction is not None
        scores["exact_match"].append(100.0 * max(exact(prediction, g) for g in golds) if found else 0.0)
        scores["f1"].append(100.0 * max(f1_v1(prediction, g) for g in golds) if found else 0.0)
    return scores


def _squad_v2(predictions, references, no_answer_threshold=1.0) -> dict[str, list[float]]:
    """As the official v2.0 script (and hfkit's squad_v2): best gold answer, then the threshold."""
    by_id = {p["id"]: p for p in predictions}
    scores: dict[str, list[float]] = {"exact": [], "f1": []}
    has_answer = []
    for reference in references:
        if reference["id"] not in by_id:
            raise ValueError(f"squad_v2: question {reference['id']!r} has no prediction")
        prediction = by_id[reference["id"]]
        answered = bool(reference["answers"]["text"])
        golds = [text for text in reference["answers"]["text"] if normalize_answer(text)] or [""]
        text = prediction["prediction_text"]
        pair = (max(exact(text, g) for g in golds), max(f1_v2(text, g) for g in golds))
        if prediction["no_answer_probability"] > no_answer_threshold:
            pair = (float(not answered), float(not answered))
        scores["exact"].append(100.0 * pair[0])
        scores["f1"].append(100.0 * pair[1])
        has_answer.append(answered)
    for subset, wanted in (("HasAns", True), ("NoAns", False)):
        if wanted in has_answer:
            for key in ("exact", "f1"):
                scores[f"{subset}_{key}"] = [v if h == wanted else math.nan for v, h in zip(scores[key], has_answer)]
    return scores
