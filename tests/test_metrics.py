"""hfkit's metric modules load offline and equal the reference implementations."""

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from hfkit import metrics
from hfkit.errors import HfkitError

PREDICTIONS = [
    "The cat sat on the mat.",
    "Le chat est assis sur le tapis — très confortable.",
    "",  # an empty prediction
    "Zürich's Straße ist schön, naïve café 東京",
    "A completely unrelated sentence with many words in it",
]
REFERENCES = [  # two references per prediction
    ["The cat is sitting on the mat.", "A cat sat on the mat."],
    ["Le chat est assis sur le tapis, très confortable.", "Le chat s'assoit sur le tapis."],
    ["Nothing was said.", "Silence."],
    ["Zürich's Straße ist schön, naive cafe 東京", "Die Straße in Zürich ist schön."],
    ["Something else entirely.", "Another reference here."],
]
STREAMS = [[refs[i] for refs in REFERENCES] for i in range(2)]


def test_sacrebleu_equals_corpus_bleu_with_several_references():
    result = metrics.load("sacrebleu").compute(predictions=PREDICTIONS, references=REFERENCES)
    direct = sacrebleu.corpus_bleu(PREDICTIONS, STREAMS)
    assert abs(result["score"] - direct.score) < 1e-9
    assert result["counts"] == direct.counts and result["sys_len"] == direct.sys_len
    assert set(result) == {"score", "counts", "totals", "precisions", "bp", "sys_len", "ref_len", "signature"}
    assert result["signature"].startswith("nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_sacrebleu_tokenize_option_and_single_references():
    single = [refs[0] for refs in REFERENCES]
    result = metrics.load("sacrebleu").compute(predictions=PREDICTIONS, references=single, tokenize="intl")
    assert abs(result["score"] - sacrebleu.corpus_bleu(PREDICTIONS, [single], tokenize="intl").score) < 1e-9
    assert "tok:intl" in result["signature"]


def test_chrf_and_ter_equal_sacrebleu():
    chrf = metrics.load("chrf").compute(predictions=PREDICTIONS, references=REFERENCES)
    assert abs(chrf["score"] - sacrebleu.corpus_chrf(PREDICTIONS, STREAMS).score) < 1e-9
    chrf_pp = metrics.load("chrf").compute(predictions=PREDICTIONS, references=REFERENCES, word_order=2)
    assert abs(chrf_pp["score"] - sacrebleu.corpus_chrf(PREDICTIONS, STREAMS, word_order=2).score) < 1e-9
    ter = metrics.load("ter").compute(predictions=PREDICTIONS, references=REFERENCES)
    assert abs(ter["score"] - sacrebleu.corpus_ter(PREDICTIONS, STREAMS).score) < 1e-9
    assert {"score", "num_edits", "ref_length"} <= set(ter)


def test_unequal_reference_counts_are_refused():
    with pytest.raises(ValueError, match="same number of references"):
        metrics.load("sacrebleu").compute(predictions=["a", "b"], references=[["a"], ["b", "c"]])


def test_rouge_is_the_mean_of_rouge_score_f_measures():
    predictions = [p or "" for p in PREDICTIONS] + ["first line\nsecond line about cats"]
    references = [refs[0] for refs in REFERENCES] + ["first line about cats\nsecond line"]
    result = metrics.load("rouge").compute(predictions=predictions, references=references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    per_example = [scorer.score(r, p) for r, p in zip(references, predictions)]
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        expected = sum(s[key].fmeasure for s in per_example) / len(per_example)
        assert abs(result[key] - expected) < 1e-9
    assert result["rougeLsum"] != result["rougeL"]  # newlines split sentences for rougeLsum


def test_rouge_with_several_references_takes_the_best():
    result = metrics.load("rouge").compute(predictions=PREDICTIONS, references=REFERENCES)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    expected = sum(scorer.score_multi(r, p)["rouge2"].fmeasure for r, p in zip(REFERENCES, PREDICTIONS)) / 5
    assert abs(result["rouge2"] - expected) < 1e-9


def test_exact_match_loads_offline_and_scores_between_0_and_1():
    em = metrics.load("exact_match")
    assert em.compute(predictions=["a", "b", "c", "d"], references=["a", "b", "x", "D"]) == {"exact_match": 0.5}
    result = em.compute(predictions=["The Cat!", "year 1999", "x-1"], references=["the cat", "year 2024", "x1"],
                        ignore_case=True, ignore_punctuation=True, ignore_numbers=True)
    assert result == {"exact_match": 1.0}
    result = em.compute(predictions=["answer: 42"], references=["42"], regexes_to_ignore=["^answer: "])
    assert result == {"exact_match": 1.0}


def test_compute_splits_headline_scores_from_details():
    scores, details = metrics.compute(["sacrebleu", "exact_match", "rouge"], ["a b c d"], ["a b c d"],
                                      {"sacrebleu": {"tokenize": "char"}})
    assert scores["sacrebleu"] == pytest.approx(100.0) and scores["exact_match"] == 1.0 and scores["rouge1"] == 1.0
    assert "tok:char" in details["sacrebleu_signature"] and "sacrebleu_bp" in details


def test_unknown_and_offline_hub_metrics_are_refused():
    with pytest.raises(HfkitError, match="unknown metric 'bleu'"):
        metrics.load("bleu")
    with pytest.raises(HfkitError, match="comes from the Hub and HF_HUB_OFFLINE=1"):
        metrics.load("evaluate-metric/bertscore")


CJK_PREDICTIONS = ["今天天气很好。我们去公园散步吧！", "東京は日本の首都です。"]
CJK_REFERENCES = ["今天天气不错。我们去公园吧。", "日本の首都は東京です。"]


def test_rouge_char_tokenizer_scores_cjk_as_rouge_score_does():
    from hfkit.metrics.options import CharTokenizer

    rouge = metrics.load("rouge")
    default = rouge.compute(predictions=CJK_PREDICTIONS, references=CJK_REFERENCES)
    assert all(value == 0.0 for value in default.values())  # rouge_score's tokenizer keeps only [a-z0-9]
    result = rouge.compute(predictions=CJK_PREDICTIONS, references=CJK_REFERENCES, tokenizer="char",
                           split_sentences=False)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], tokenizer=CharTokenizer())
    per_example = [scorer.score(r, p) for r, p in zip(CJK_REFERENCES, CJK_PREDICTIONS)]
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert result[key] > 0
        assert abs(result[key] - sum(s[key].fmeasure for s in per_example) / 2) < 1e-9
    # split on 。！: rougeLsum scores sentence by sentence, the other types do not change
    split = rouge.compute(predictions=CJK_PREDICTIONS, references=CJK_REFERENCES, tokenizer="char")
    lines = [scorer.score("今天天气不错。\n我们去公园吧。", "今天天气很好。\n我们去公园散步吧！"),
             scorer.score("日本の首都は東京です。", "東京は日本の首都です。")]
    assert abs(split["rougeLsum"] - sum(s["rougeLsum"].fmeasure for s in lines) / 2) < 1e-9
    assert split["rouge1"] == result["rouge1"] and split["rougeL"] == result["rougeL"]


def test_rouge_whitespace_tokenizer_keeps_every_script_and_ignores_stemming():
    from hfkit.metrics.options import WhitespaceTokenizer

    predictions, references = ["ذهب الولد إلى المدرسة", "Running Dogs ran"], ["ذهب الولد إلى البيت", "running dogs run"]
    result = metrics.load("rouge").compute(predictions=predictions, references=references, tokenizer="whitespace")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], tokenizer=WhitespaceTokenizer())
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        expected = sum(scorer.score(r, p)[key].fmeasure for r, p in zip(references, predictions)) / 2
        assert abs(result[key] - expected) < 1e-9
    assert result["rouge1"] == pytest.approx((0.75 + 2 / 3) / 2)  # "ran" != "run": no stemming
    unstemmed = metrics.load("rouge").compute(predictions=predictions, references=references, tokenizer="whitespace",
                                              use_stemmer=False)
    assert unstemmed == result
    with pytest.raises(ValueError, match="unknown tokenizer 'words'"):
        metrics.load("rouge").compute(predictions=predictions, references=references, tokenizer="words")


def test_rouge_lsum_splits_sentences_before_scoring():
    prediction = "The cat sat on the mat. It was happy! Was the dog there?"
    reference = "A cat sat on a mat. The dog was not there. It was happy."
    rouge = metrics.load("rouge")
    result = rouge.compute(predictions=[prediction], references=[reference])
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    expected = scorer.score("A cat sat on a mat.\nThe dog was not there.\nIt was happy.",
                            "The cat sat on the mat.\nIt was happy!\nWas the dog there?")
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert abs(result[key] - expected[key].fmeasure) < 1e-9
    unsplit = rouge.compute(predictions=[prediction], references=[reference], split_sentences=False)
    assert unsplit["rougeLsum"] == unsplit["rougeL"] != result["rougeLsum"]  # one "sentence" without splitting
    assert unsplit["rouge1"] == result["rouge1"]


def test_sentence_splitter():
    from hfkit.metrics.options import one_sentence_per_line

    assert one_sentence_per_line("Pi is 3.14, e.g. here. Yes!  No?") == "Pi is 3.14, e.g.\nhere.\nYes!\nNo?"
    assert one_sentence_per_line('He said "hi." Then he left...') == 'He said "hi."\nThen he left...'
    assert one_sentence_per_line("今天很好。我们走吧！好吗？") == "今天很好。\n我们走吧！\n好吗？"
    assert one_sentence_per_line("Line one. Still one\nline two. Still two") == "Line one. Still one\nline two. Still two"
    assert one_sentence_per_line("  no end mark  ") == "no end mark"
    assert one_sentence_per_line("") == ""
