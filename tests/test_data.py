"""Data loading, column mapping, cleaning counts, splitting and decontamination."""

import json

import pytest
from datasets import Dataset
from support import date_rows, write_jsonl

from hfkit.cleaning import clean_split, normalize_whitespace
from hfkit.data import load_file, load_splits
from hfkit.errors import HfkitError
from hfkit.schema import CleanSection, DataSection

PC = ("prompt", "completion")


def counts(steps):
    return {step["step"]: step.get("removed") for step in steps}


def test_whitespace_normalisation_keeps_newlines_and_indentation():
    assert normalize_whitespace("\n a \t b  \r\n\n  c  \n\n") == "a b\n\n  c"
    code = "def f(x):\n    if x:\n\treturn x  \n"
    assert normalize_whitespace(code) == "def f(x):\n    if x:\n\treturn x"


# What a reference may hold that cleaning would once have rewritten: NBSP before '?', an ellipsis,
# full-width CJK punctuation, code indentation, runs of spaces.
UNTOUCHABLE = ["Est-ce vrai\u00a0?", "Attendez\u2026", "你好，世界！（测试）", "def f():\n    return  1\n", "  two  spaces  "]


def test_evaluation_rows_are_never_rewritten_or_dropped(tmp_path):
    train = [{"prompt": f"train {i}", "completion": "t"} for i in range(6)]
    held = [{"prompt": f"q{i}", "completion": text} for i, text in enumerate(UNTOUCHABLE)]
    held += [held[0], {"prompt": "empty answer", "completion": ""}, {"prompt": train[0]["prompt"], "completion": "t"}]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "valid.jsonl", held)
    cfg = DataSection(train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "valid.jsonl"))
    splits, report = load_splits(cfg, PC, PC, seed=0)
    assert splits["validation"].to_list() == held  # byte for byte: duplicates, empty answers and all
    assert report["validation"] == [{"step": "loaded (evaluation data is not cleaned)", "rows": len(held)}]
    assert train[0]["prompt"] not in splits["train"]["prompt"]  # decontamination removes from train only
    assert counts(report["train"])["decontaminate"] == 1


def test_decontamination_sees_through_normalisation_without_changing_eval(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"prompt": "Ｆｕｌｌ  width", "completion": "x"},
                                           {"prompt": "other", "completion": "y"}])
    write_jsonl(tmp_path / "valid.jsonl", [{"prompt": "Full width ", "completion": "x"}])
    cfg = DataSection(train_file=str(tmp_path / "train.jsonl"), validation_file=str(tmp_path / "valid.jsonl"))
    splits, report = load_splits(cfg, PC, PC, seed=0)
    assert splits["train"]["prompt"] == ["other"] and splits["validation"]["prompt"] == ["Full width "]


def test_an_eval_row_without_a_value_is_an_error_not_a_silent_drop(tmp_path):
    write_jsonl(tmp_path / "valid.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": None, "completion": "c"}])
    cfg = DataSection(validation_file=str(tmp_path / "valid.jsonl"))
    with pytest.raises(HfkitError, match=r"valid.jsonl \(validation split\) has 1 row\(s\) without a 'prompt' \(first: row 2\)"):
        load_splits(cfg, PC, PC, seed=0, splits=("validation",))


def test_every_cleaning_step_is_counted():
    rows = [
        {"prompt": "Ｆｕｌｌｗｉｄｔｈ  text", "completion": "x"},   # NFKC makes it "Fullwidth text"
        {"prompt": "Fullwidth text", "completion": " x "},        # duplicate once normalised
        {"prompt": "   ", "completion": "y"},                     # empty prompt
        {"prompt": "short", "completion": "z"},                   # too short for min_chars=10
        {"prompt": "a perfectly ordinary prompt here", "completion": "ok"},
    ]
    cfg = CleanSection(min_chars=10)
    ds, steps = clean_split(Dataset.from_list(rows), PC, cfg, "train")
    assert counts(steps) == {"loaded": None, "normalize": 0, "drop_empty": 1, "length": 1, "dedup": 1}
    assert ds["prompt"] == ["Fullwidth text", "a perfectly ordinary prompt here"]
    assert steps[-1]["rows"] == 2


def test_near_duplicates_removed_only_when_asked():
    base = "The committee met on Tuesday to discuss the budget for the coming year and agreed on most items"
    rows = [{"prompt": base, "completion": "a"}, {"prompt": base + ".", "completion": "a"},
            {"prompt": "Something entirely different about cooking pasta with garlic and olive oil", "completion": "b"}]
    ds, steps = clean_split(Dataset.from_list(rows), PC, CleanSection(), "train")
    assert len(ds) == 3
    ds, steps = clean_split(Dataset.from_list(rows), PC, CleanSection(near_dedup=True), "train")
    assert counts(steps)["near_dedup"] == 1 and len(ds) == 2


def test_cleaning_that_empties_a_split_names_the_step():
    rows = [{"prompt": "a", "completion": "b"}]
    with pytest.raises(HfkitError, match="empty after cleaning step 'length'.*min_chars"):
        clean_split(Dataset.from_list(rows), PC, CleanSection(min_chars=50), "train")


def test_messages_are_normalised_and_deduplicated():
    chat = [{"role": "user", "content": "hi  there"}, {"role": "assistant", "content": "hello"}]
    chat2 = [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello"}]
    ds, steps = clean_split(Dataset.from_list([{"messages": chat}, {"messages": chat2}]), ("messages",),
                            CleanSection(), "train")
    assert len(ds) == 1 and ds[0]["messages"][0]["content"] == "hi there"


def test_load_splits_maps_columns_holds_out_validation_and_decontaminates(tmp_path):
    rows = [{"q": r["prompt"], "a": r["completion"], "extra": 1} for r in date_rows(40)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", [{"q": rows[0]["q"], "a": rows[0]["a"], "extra": 2}])
    cfg = DataSection(train_file=str(tmp_path / "train.jsonl"), test_file=str(tmp_path / "test.jsonl"),
                      columns={"q": "prompt", "a": "completion"}, validation_fraction=0.25, max_train_samples=20)
    splits, report = load_splits(cfg, PC, PC, seed=0)
    assert set(splits) == {"train", "validation", "test"}
    assert splits["train"].column_names == ["prompt", "completion"]
    assert len(splits["validation"]) == 10
    assert report["validation"][0]["step"] == "held out from train"
    decontaminated = next(s for s in report["train"] if s["step"] == "decontaminate")
    assert decontaminated["removed"] == (1 if rows[0]["q"] not in splits["validation"]["prompt"] else 0)
    assert rows[0]["q"] not in splits["train"]["prompt"]
    assert len(splits["train"]) == 20 and report["train"][-1] == {"step": "first 20", "rows": 20}


def test_date_like_strings_stay_strings(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [{"prompt": "when?", "completion": "2021-03-05"},
                                       {"prompt": "count?", "completion": 42}])
    splits, _ = load_splits(DataSection(train_file=str(tmp_path / "t.jsonl"), validation_fraction=0.5), PC, PC, seed=0)
    values = sorted([*splits["train"]["completion"], *splits["validation"]["completion"]])
    assert values == ["2021-03-05", "42"]


def test_a_column_of_mixed_lists_and_objects_is_one_line_not_datasets_json_loop(tmp_path):
    """datasets 5.2 writes mixed nested columns as JSON through a loop that never ended on a fuzzed row
    (a CI run timed out in it); hfkit names the column first. Scalars may still mix (above)."""
    write_jsonl(tmp_path / "t.jsonl", [{"prompt": "a", "completion": "b", "meta": {"k": {"x": 1}}},
                                       {"prompt": "c", "completion": "d", "meta": {"k": ["y"]}}])
    with pytest.raises(HfkitError, match=r"the column 'meta' holds an object whose contents differ in kind .* "
                                         r"drop the column if the task does not read it"):
        load_splits(DataSection(train_file=str(tmp_path / "t.jsonl"), validation_fraction=0.5), PC, PC, seed=0)
    write_jsonl(tmp_path / "u.jsonl", [{"prompt": "a", "completion": "b", "meta": [1]},
                                       {"prompt": "c", "completion": "d", "meta": {"k": 1}}])
    with pytest.raises(HfkitError, match=r"the column 'meta' holds a list and an object"):
        load_splits(DataSection(train_file=str(tmp_path / "u.jsonl"), validation_fraction=0.5), PC, PC, seed=0)


def test_csv_cells_stay_text(tmp_path):
    (tmp_path / "t.csv").write_text("prompt,completion\nzip code?,00420\nempty?,none\n", encoding="utf-8")
    cfg = DataSection(train_file=str(tmp_path / "t.csv"), validation_file=str(tmp_path / "t.csv"))
    cfg.clean.decontaminate = False
    splits, _ = load_splits(cfg, PC, PC, seed=0)
    assert splits["validation"]["completion"] == ["00420", "none"]


def test_text_files_and_json_arrays_load(tmp_path):
    (tmp_path / "t.txt").write_text("line one\n\nline two\n", encoding="utf-8")
    splits, report = load_splits(DataSection(train_file=str(tmp_path / "t.txt"), validation_fraction=0.5),
                                 ("text",), ("text",), seed=0)
    assert counts(report["train"])["drop_empty"] == 1  # the blank line
    (tmp_path / "a.json").write_text('[{"prompt": "p", "completion": "c"}]', encoding="utf-8")
    splits, _ = load_splits(DataSection(validation_file=str(tmp_path / "a.json")), PC, PC, seed=0,
                            splits=("validation",))
    assert splits["validation"][0] == {"prompt": "p", "completion": "c"}


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b'{"prompt": "caf\xe9"}\n', "not valid UTF-8"),
    (b'{"prompt": "a", "completion": \n', "not valid JSON"),
    (b'{\n  "rows": [{"x": 1}]\n}\n', "holds one JSON object, not a list of examples .its keys: rows.; set data.field"),
    (b'{"prompt": "a", "completion": "b"}\n{"prompt": "a" "completion": "b"}\n', "line 2 is not valid JSON"),
])
def test_bad_files_get_clear_errors(tmp_path, content, expected):
    (tmp_path / "t.jsonl").write_bytes(content)
    with pytest.raises(HfkitError, match=expected):
        load_splits(DataSection(train_file=str(tmp_path / "t.jsonl")), PC, PC, seed=0)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(HfkitError, match="file not found"):
        load_splits(DataSection(train_file=str(tmp_path / "nope.jsonl")), PC, PC, seed=0)
    (tmp_path / "t.xml").write_text("<a/>")
    with pytest.raises(HfkitError, match="unknown extension"):
        load_splits(DataSection(train_file=str(tmp_path / "t.xml")), PC, PC, seed=0)


def test_missing_columns_list_what_exists(tmp_path):
    write_jsonl(tmp_path / "t.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(HfkitError, match=r"no 'prompt' column \(its columns are: question, answer\)"):
        load_splits(DataSection(train_file=str(tmp_path / "t.jsonl")), PC, PC, seed=0)
    cfg = DataSection(train_file=str(tmp_path / "t.jsonl"), columns={"query": "prompt"})
    with pytest.raises(HfkitError, match="data.columns: t.jsonl has no column 'query'; its columns are: question, answer"):
        load_splits(cfg, PC, PC, seed=0)


def test_squad_json_with_flat_rows_under_data_loads_as_transformers_reads_it(tmp_path):
    # transformers' QA examples and fixtures: {"version": ..., "data": [flat rows]}, read with field="data"
    rows = [{"id": "q1", "question": "Where?", "context": "Anna was born in Lisbon.",
             "answers": {"text": ["Lisbon"], "answer_start": [17]}}]
    for name, text in (("indented.json", json.dumps({"version": "2.0", "data": rows}, indent=2)),
                       ("one_line.json", json.dumps({"version": "2.0", "data": rows}))):
        (tmp_path / name).write_text(text, encoding="utf-8")
        assert load_file(tmp_path / name, "data.validation_file")[0] == rows[0]


def test_data_field_names_the_key_that_holds_the_examples(tmp_path):
    document = {"meta": {"source": "x"}, "examples": [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(4)]}
    (tmp_path / "d.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    splits, _ = load_splits(DataSection(train_file=str(tmp_path / "d.json"), field="examples",
                                        validation_fraction=0.25), PC, PC, seed=0)
    assert len(splits["train"]) + len(splits["validation"]) == 4
    with pytest.raises(HfkitError, match="data.field is 'rows', but the file has no list under that key .its keys: meta, examples."):
        load_splits(DataSection(train_file=str(tmp_path / "d.json"), field="rows"), PC, PC, seed=0)


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.csv", "rows.txt"])
def test_a_same_size_rewrite_with_an_old_mtime_is_read_again(tmp_path, name):
    """The cache was keyed on path, size and mtime: `cp -p`, `rsync -a` or an archive brought back stale rows."""
    import os

    path = tmp_path / name
    contents = {".jsonl": ('{"prompt": "aaa", "completion": "1"}\n', '{"prompt": "bbb", "completion": "2"}\n'),
                ".csv": ("prompt,completion\naaa,1\n", "prompt,completion\nbbb,2\n"),
                ".txt": ("aaa 1\n", "bbb 2\n")}[path.suffix]
    path.write_text(contents[0])
    stamp = path.stat().st_mtime_ns
    first = load_file(path, key="data.train_file")
    path.write_text(contents[1])  # the same size
    os.utime(path, ns=(stamp, stamp))  # and the old modification time, as cp -p keeps it
    assert path.stat().st_size == len(contents[0]) and path.stat().st_mtime_ns == stamp
    second = load_file(path, key="data.train_file")
    assert first[0] != second[0] and "bbb" in json.dumps(second[0])
