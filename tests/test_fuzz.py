"""Property-based tests: malformed recipes, overrides and data rows end in success or an HfkitError.

Each test runs HFKIT_FUZZ_EXAMPLES generated cases (default 200, so 600 per CI run). They are the
same cases on every run (derandomized), so a failure or a hang in CI reproduces here; for a longer hunt
over new cases: HFKIT_FUZZ_EXAMPLES=5000 HFKIT_FUZZ_RANDOM=1 make test.
"""

import json
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hfkit.data import load_splits
from hfkit.errors import HfkitError
from hfkit.recipe import apply_overrides, load_recipe, validate_recipe
from hfkit.schema import DataSection

EXAMPLES = int(os.environ.get("HFKIT_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=not os.environ.get("HFKIT_FUZZ_RANDOM"), database=None)

scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                            max_size=3), max_leaves=8)
SECTION_KEYS = {
    "model": ["name_or_path", "gguf_file", "dtype", "trust_remote_code", "encoder_decoder", "revision"],
    "data": ["train_file", "format", "columns", "max_length", "clean", "validation_fraction", "dataset", "num_proc",
             "field"],
    "peft": ["method", "r", "alpha", "dropout", "target_modules", "use_dora"],
    "training": ["learning_rate", "max_steps", "eval_strategy", "seed", "per_device_train_batch_size", "bf16",
                 "report_to", "num_train_epochs", "hub_token"],
    "generation": ["max_new_tokens", "num_beams", "top_p", "temperature"],
    "eval": ["metrics", "baseline", "split", "metric_args", "trust_remote_code"],
    "output": ["dir", "name", "timestamp"],
    "qa": ["mode", "doc_stride", "max_seq_length"],
    "hub": ["push", "repo_id", "language"],
}
sections = st.one_of(*(st.fixed_dictionaries({}, optional={key: values for key in keys}) for keys in SECTION_KEYS.values()))
recipes = st.fixed_dictionaries(
    {"task": st.sampled_from(["generation", "translation", "summarization", "qa"]) | st.text(max_size=12)},
    optional={**{name: sections | values for name in SECTION_KEYS}, "extra": values},
)


def _accept_only_hfkit_errors(call) -> None:
    try:
        call()
    except HfkitError as err:
        assert str(err).strip(), "an HfkitError must say what is wrong"


@FUZZ
@given(recipe=recipes | values, as_text=st.booleans(), raw=st.text(max_size=60))
def test_recipe_files(recipe, as_text, raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.yaml"
        path.write_text(raw if as_text else yaml.safe_dump(recipe, allow_unicode=True), encoding="utf-8")
        _accept_only_hfkit_errors(lambda: load_recipe(path))


BASE = {"task": "generation", "model": {"name_or_path": "m"}, "data": {"train_file": "/t.jsonl"}}
keys = st.lists(st.sampled_from([*SECTION_KEYS, *sum(SECTION_KEYS.values(), []), "x", ""]) | st.text(max_size=6),
                min_size=1, max_size=4).map(".".join)
overrides = st.one_of(st.text(max_size=40), st.builds(lambda k, v: f"{k}={v}", keys, st.text(max_size=20)),
                      st.builds(lambda k, v: f"{k}={json.dumps(v)}", keys, values))


@FUZZ
@given(items=st.lists(overrides, max_size=4))
def test_overrides(items):
    raw = json.loads(json.dumps(BASE))
    _accept_only_hfkit_errors(lambda: (apply_overrides(raw, items), validate_recipe(raw, where="fuzz")))


fields = st.sampled_from(["prompt", "completion", "text", "messages", "x"]) | st.text(max_size=6)
rows = st.lists(st.dictionaries(fields, values, max_size=4), max_size=6)


@FUZZ
@given(content=rows, extension=st.sampled_from([".jsonl", ".json", ".csv", ".txt"]), raw=st.binary(max_size=80),
       use_raw=st.booleans(), fmt=st.sampled_from([("prompt", "completion"), ("text",), ("messages",)]),
       field=st.none() | st.sampled_from(["data", "rows"]), as_document=st.booleans())
def test_data_files(content, extension, raw, use_raw, fmt, field, as_document):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"data{extension}"
        if use_raw:
            path.write_bytes(raw)
        elif as_document:  # {"version": ..., "data": [rows]}, as SQuAD and transformers' fixtures write it
            path.write_text(json.dumps({"version": "1", field or "data": content}, indent=1), encoding="utf-8")
        else:
            path.write_text("".join(json.dumps(row) + "\n" for row in content), encoding="utf-8")
        cfg = DataSection(train_file=str(path), validation_fraction=0.5, field=field)
        _accept_only_hfkit_errors(lambda: load_splits(cfg, fmt, fmt, seed=0))
