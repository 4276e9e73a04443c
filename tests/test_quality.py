"""Quality filters (data.clean: repetition, symbols, language, word bounds): the published rules as
datatrove implements them, each noise removed by the filter named for it, counted, in memory and
streamed; evaluation rows never touched."""

import random
from pathlib import Path

import pytest
from support import GERMAN, GERMAN_ANSWERS, clean_rows, steering_rows, tiny_recipe, write_jsonl

from hfkit import job, quality
from hfkit.cleaning import clean_split, recording
from hfkit.cli import main
from hfkit.errors import HfkitError
from hfkit.recipe import load_recipe
from hfkit.schema_clean import CleanSection, RepetitionRules, SymbolRules


WORDS = ("the river runs past an old mill where children play in summer and farmers sell apples "
         "bread cheese honey").split()
SYMBOLS = "# ... … - • 42 2021 ; : ( ) ! ?".split()


def datatrove_filter(kind: str, **options):
    """datatrove's Gopher filter (`repetition` or `quality`) as a function of a text, with whitespace
    words, the word definition hfkit uses (datatrove's own English splitter is spaCy, not installed)."""
    pytest.importorskip("datatrove", reason="the reference implementation: pip install -e '.[dev]' (make test does)")
    from datatrove.data import Document
    from datatrove.pipeline.filters.gopher_quality_filter import GopherQualityFilter
    from datatrove.pipeline.filters.gopher_repetition_filter import GopherRepetitionFilter
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Whitespace(WordTokenizer):
        def word_tokenize(self, text):
            return text.split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    cls = GopherRepetitionFilter if kind == "repetition" else GopherQualityFilter
    reference = cls(language=Whitespace(), **options)
    return lambda text: reference.filter(Document(text=text, id="0"))


def documents(count: int = 600, seed: int = 0) -> list[str]:
    """Web-page-like texts of 40-250 words: lines, paragraphs, bullets, ellipses, hashes, numbers, and
    copied lines, paragraphs and phrases in varying amounts."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        symbols = rng.choice([0, 0.01, 0.05, 0.15, 0.3])  # the share of symbol "words"

        def word():
            return rng.choice(SYMBOLS if rng.random() < symbols else WORDS)

        lines = []
        for _ in range(rng.randint(2, 12)):
            line = " ".join(word() for _ in range(rng.randint(3, 20)))
            if rng.random() < 0.15:
                line = rng.choice(["- ", "• "]) + line
            if rng.random() < 0.1:
                line += " ..."
            lines.append(line)
        for _ in range(rng.choice([0, 0, 1, 3])):  # copied lines
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines))
        separator = rng.choice(["\n", "\n\n"])
        text = separator.join(lines)
        if rng.random() < 0.2:  # a repeated phrase
            phrase = " ".join(word() for _ in range(rng.randint(2, 6)))
            text += " " + " ".join([phrase] * rng.randint(2, 6))
        if len(text.split()) >= 40:
            found.append(text)
    return found


DATATROVE_REPETITION = {"top_2_gram": "top_2_gram_char_frac", "top_3_gram": "top_3_gram_char_frac",
                        "top_4_gram": "top_4_gram_char_frac",
                        **{f"duplicated_{n}_n_grams": f"dup_{n}_gram_char_frac" for n in range(5, 11)}}
DATATROVE_SYMBOLS = {"gopher_too_many_hashes": "hash_word_ratio", "gopher_too_many_ellipsis": "ellipsis_word_ratio",
                     "gopher_too_many_bullets": "bullet_lines_ratio",
                     "gopher_too_many_end_ellipsis": "ellipsis_lines_ratio",
                     "gopher_below_alpha_threshold": "min_alpha_words_ratio"}


def verdict(result, names: dict) -> str | None:
    return None if result is True else names.get(result[1], result[1])


def test_the_repetition_rules_are_datatroves_gopher_repetition_filter():
    reference = datatrove_filter("repetition")
    rules = RepetitionRules().model_dump()
    texts = documents()
    ours = [quality.repetition_problem(text, rules) for text in texts]
    theirs = [verdict(reference(text), DATATROVE_REPETITION) for text in texts]
    assert ours == theirs
    assert 100 < sum(map(bool, ours)) < len(texts) - 100  # both kinds of answer, many of each
    assert len({problem for problem in ours if problem}) >= 5  # and many of the rules decided something


def test_the_symbol_rules_are_datatroves_gopher_quality_filter():
    reference = datatrove_filter("quality", min_doc_words=None, max_doc_words=None, min_avg_word_length=None,
                                 max_avg_word_length=None, min_stop_words=None)
    rules = SymbolRules().model_dump()
    texts = documents(seed=1)
    ours = [quality.symbol_problem(text, rules) for text in texts]
    theirs = [verdict(reference(text), DATATROVE_SYMBOLS) for text in texts]
    assert ours == theirs
    assert len({problem for problem in ours if problem}) >= 4 and ours.count(None) > 50


def test_the_word_bounds_are_datatroves_gopher_quality_filter():
    reference = datatrove_filter("quality", min_doc_words=50, max_doc_words=150, min_avg_word_length=3,
                                 max_avg_word_length=5, max_symbol_word_ratio=None, max_bullet_lines_ratio=None,
                                 max_ellipsis_lines_ratio=None, max_non_alpha_words_ratio=None, min_stop_words=None)
    names = {"gopher_short_doc": "words", "gopher_long_doc": "words", "gopher_below_avg_threshold": "mean_word_length",
             "gopher_above_avg_threshold": "mean_word_length"}
    options = {"words": {"low": 50, "high": 150}, "mean_word_length": {"low": 3, "high": 5}}
    # A word of only punctuation or symbols is not counted (Unicode categories P and S); datatrove's
    # list of such characters lacks the bullet "•", the one difference, so these texts use "-".
    texts = [text.replace("•", "-") for text in documents(seed=2)]
    assert quality.word_counts("a • b") == (2, 1.0)
    ours = [next((check for check in ("words", "mean_word_length") if quality.problem(check, [t], options[check])), None)
            for t in texts]
    theirs = [verdict(reference(text), names) for text in texts]
    assert ours == theirs and {"words", "mean_word_length", None} <= set(ours)


def test_short_clean_rows_pass_where_datatrove_counts_an_ngram_seen_once():
    """The one rule hfkit reads differently: a top n-gram must repeat to count as repetition."""
    reference = datatrove_filter("repetition")
    rules = RepetitionRules().model_dump()
    for text in ("What is the capital of France?", "Paris is the capital of France.", "Tell me a story."):
        assert reference(text) == (False, "top_2_gram")
        assert quality.repetition_problem(text, rules) is None
    copied = "buy now " * 4
    assert quality.repetition_problem(copied, rules) == "top_2_gram_char_frac"
    assert reference(copied) == (False, "top_2_gram")


def clean(rows: list[dict], **options) -> dict:
    from datasets import Dataset

    with recording() as findings:
        kept, steps = clean_split(Dataset.from_list(rows), ("prompt", "completion"), CleanSection(**options), "train")
    return {"kept": kept, "removed": {s["step"]: s.get("removed") for s in steps}, "findings": findings}


def test_each_kind_of_noise_is_removed_by_the_filter_named_for_it():
    train, _ = steering_rows()
    result = clean(train, repetition=True, symbols=True, language="en")
    assert result["removed"] == {"loaded": None, "normalize": 0, "drop_empty": 0, "repetition": 5, "symbols": 5,
                                 "language": 5, "dedup": 0}
    assert list(result["kept"]) == clean_rows(60)  # every clean row stays, in order
    findings = result["findings"]
    assert [row["why"] for row in findings.removed["language"]] == ["de (1.00)"] * 3
    assert findings.reasons["language"] == {"de": 5} and sum(findings.reasons["symbols"].values()) == 5
    assert findings.removed["repetition"][0]["completion"].startswith("buy cheap pills now buy cheap pills now")
    assert findings.reasons["repetition"] == {"top_2_gram_char_frac": 5}


def test_too_short_and_too_long_rows_are_removed_by_the_word_bounds():
    short = [{"prompt": "Hi", "completion": "ok"}, {"prompt": "Yes?", "completion": "No ..."}]
    long = [{"prompt": "Tell me everything.", "completion": " ".join(["word"] * 80)}]
    result = clean(clean_rows(10) + short + long, min_words=4, max_words=60)
    assert result["removed"]["words"] == 3 and list(result["kept"]) == clean_rows(10)
    assert result["findings"].reasons["words"] == {"below the minimum": 2, "above the maximum": 1}
    assert [row["why"] for row in result["findings"].removed["words"]] == [
        "2 words, below min_words 4", "2 words, below min_words 4", "83 words, above max_words 60"]
    tiny_words = [{"prompt": "I am a b c", "completion": "d e f g"}]
    assert clean(clean_rows(3) + tiny_words, mean_word_length=[3, 10])["removed"]["mean_word_length"] == 1


def test_the_filters_are_off_unless_the_recipe_turns_them_on():
    train, _ = steering_rows()
    result = clean(train)
    assert set(result["removed"]) == {"loaded", "normalize", "drop_empty", "dedup"} and len(result["kept"]) == 75


def test_repetition_looks_at_each_field_and_limits_can_be_set():
    row = {"prompt": "Repeat after me: the cat sat on the mat.", "completion": "The cat sat on the mat."}
    assert clean([row], repetition=True)["removed"]["repetition"] == 0  # an answer echoing its question is fine
    lines = {"prompt": "List the days.", "completion": "Monday\nMonday\nTuesday\nMonday"}
    assert clean([lines, row], repetition=True)["removed"]["repetition"] == 1
    assert clean([lines, row], repetition={"dup_line_frac": 0.9, "dup_line_char_frac": 0.9})["removed"]["repetition"] == 0


def test_messages_are_filtered_on_their_contents():
    from datasets import Dataset

    def chat(question, answer):
        return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}

    english = chat("Tell me about the old mill by the river.", "The old mill by the river grinds flour every autumn.")
    rows = [english, chat("Erzähl mir von der alten Mühle am Fluss.", "Die alte Mühle mahlt jeden Herbst Mehl."),
            chat("Show me the codes.", "%%%% $$$$ @@@@ &&&& **** #### !!!! ???? ^^^^ ~~~~")]
    kept, steps = clean_split(Dataset.from_list(rows), ("messages",), CleanSection(symbols=True, language="en"), "train")
    removed = {s["step"]: s.get("removed") for s in steps}
    assert (removed["symbols"], removed["language"]) == (1, 1) and kept.to_list() == [english]


@pytest.fixture()
def steering_recipe(tmp_path, tiny_llama):
    path = tiny_recipe(tmp_path, tiny_llama, extra="")
    train, validation = steering_rows()
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "validation.jsonl", validation)
    return path


FILTERS = ["data.clean.repetition=true", "data.clean.symbols=true", "data.clean.language=en"]


def test_evaluation_rows_are_never_filtered(steering_recipe):
    recipe = load_recipe(steering_recipe, FILTERS)
    prepared = job.prepare(recipe, job.bind(recipe), recipe.model.name_or_path, with_train=True)
    steps = {s["step"]: s.get("removed") for s in prepared.report["cleaning"]["train"]}
    assert (steps["repetition"], steps["symbols"], steps["language"]) == (5, 5, 5)
    assert len(prepared.splits["train"]) == 60
    _, validation = steering_rows()
    assert prepared.splits["validation"].to_list() == validation  # German, junk and spam rows stay, as written
    assert prepared.report["cleaning"]["validation"] == [{"step": "loaded (evaluation data is not cleaned)", "rows": 13}]


def test_the_stream_filters_the_same_rows(steering_recipe):
    from test_streaming import stream_for

    in_memory = load_recipe(steering_recipe, FILTERS)
    memory = job.prepare(in_memory, job.bind(in_memory), in_memory.model.name_or_path, with_train=True)
    stream = stream_for(load_recipe(steering_recipe, [*FILTERS, "data.streaming=true", "training.max_steps=5"]))
    stream.max_passes = 1
    streamed = [tuple(example["input_ids"]) for example in stream]
    counts = {s["step"]: s.get("removed") for s in stream.cleaning[1:]}
    expected = {s["step"]: s.get("removed") for s in memory.report["cleaning"]["train"][1:]}
    assert counts == expected and counts["language"] == counts["symbols"] == counts["repetition"] == 5
    assert sorted(streamed) == sorted(tuple(row["input_ids"]) for row in memory.train.dataset)


@pytest.mark.parametrize("override, message", [
    ("data.clean.language=xx", "data.clean.language: 'xx' is not a language the identifier (py3langid) knows"),
    ("data.clean.mean_word_length=[10,3]", "data.clean.mean_word_length: expected [shortest, longest] mean word length"),
    ("data.clean.repetition.dup_lines=0.5", "data.clean.repetition.dup_lines: unknown key; did you mean 'dup_line_frac'?"),
])
def test_a_bad_filter_setting_is_one_line(steering_recipe, capsys, override, message):
    assert main(["validate", str(steering_recipe), override]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_language_identification_is_right_on_whole_sentences():
    """The model's own word: 252 sentences in 7 languages (the benchmark's), every one placed right."""
    from pathlib import Path

    rows = [line.split("\t") for line in
            (Path(__file__).resolve().parent.parent / "benchmarks/data/language_sentences.tsv").read_text().splitlines()]
    wrong = [(code, text) for code, text in rows if quality.identify(text)[0] != code]
    assert len(rows) == 252 and len(wrong) <= 1, wrong
    with pytest.raises(HfkitError, match="'english' is not a language"):
        quality.check_languages(["english"])


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.65, 0.9])
def test_the_language_decision_equals_the_one_from_every_languages_probability(threshold):
    """in_languages skips the full ranking where it cannot change the decision; check it cannot."""
    from pathlib import Path

    texts = [line.split("\t")[1] for line in
             (Path(__file__).resolve().parent.parent / "benchmarks/data/language_sentences.tsv").read_text().splitlines()]
    texts += [" ".join(text.split()[:2]) for text in texts] + ["", "2021-03-05", "#### @@@@"]
    texts += [a + "\n\n" + b for a, b in zip(texts[:36], texts[72:108])]  # English + French examples
    for wanted in (("en",), ("en", "fr"), ("nl", "de")):
        for text in texts:
            ranked = dict(quality.identifier().rank(text)) if text.strip() else {}
            together = sum(float(ranked.get(code, 0.0)) for code in wanted)
            assert quality.in_languages(text, wanted, threshold) == (together >= threshold), text


def test_a_translation_pair_is_kept_by_both_its_languages():
    pairs = [{"source": en, "target": fr} for en, fr in
             zip(*[[line.split("\t")[1] for line in
                    (Path(__file__).resolve().parent.parent / "benchmarks/data/language_sentences.tsv").read_text()
                    .splitlines() if line.startswith(code)] for code in ("en", "fr")])]
    from datasets import Dataset

    kept, steps = clean_split(Dataset.from_list(pairs), ("source", "target"), CleanSection(language=["en", "fr"]),
                              "train")
    assert len(kept) == 36 and steps[-2] == {"step": "language", "removed": 0, "rows": 36}


def test_a_filter_that_removes_every_row_says_which_and_what_to_relax():
    from datasets import Dataset

    rows = [{"prompt": question, "completion": answer} for question, answer in zip(GERMAN, GERMAN_ANSWERS)]
    with pytest.raises(HfkitError, match=r"the train split is empty after cleaning step 'language' \(it removed all "
                                         r"5 rows\); check the data or relax data.clean.language / language_threshold"):
        clean_split(Dataset.from_list(rows), ("prompt", "completion"), CleanSection(language="en"), "train")


def test_a_rule_change_is_a_new_cache_entry(tmp_path, monkeypatch):
    """`datasets` keys a map on its function's name, not on the code it calls: RULES_VERSION does."""
    from hfkit.data import load_file

    ds = load_file(write_jsonl(tmp_path / "train.jsonl", steering_rows()[0]), "data.train_file")

    def symbols_removed():
        _, steps = clean_split(ds, ("prompt", "completion"), CleanSection(symbols=True), "train")
        return next(step["removed"] for step in steps if step["step"] == "symbols")

    assert symbols_removed() == 5
    monkeypatch.setattr(quality, "symbol_problem", lambda text, rules: None)  # a changed rule...
    assert symbols_removed() == 5  # ...reads the cached verdicts
    monkeypatch.setattr(quality, "RULES_VERSION", quality.RULES_VERSION + 1)
    assert symbols_removed() == 0  # unless the version says the rules changed
