"""Keys that explain themselves: `hfkit explain KEY`, `hfkit schema`, and the key reference they generate."""

import json
from pathlib import Path

import jsonschema
import pytest

from hfkit import explain
from hfkit.cli import main
from hfkit.recipe import read_yaml

REPO = Path(__file__).resolve().parent.parent
SHIPPED = sorted(p for p in (REPO / "recipes").glob("*/*.yaml") if p.parent.name != "studies")


def test_explain_prints_a_keys_type_default_and_description(capsys):
    assert main(["explain", "data.packing"]) == 0
    out = capsys.readouterr().out
    assert "auto | none | padding_free | bfd" in out and "default: auto" in out
    assert len(out.split()) >= 8


def test_a_misspelt_key_exits_2_naming_the_closest(capsys):
    assert main(["explain", "data.pakcing"]) == 2
    assert "did you mean 'data.packing'" in capsys.readouterr().err
    assert main(["explain", "training.learnin_rate"]) == 2
    assert "did you mean 'training.learning_rate'" in capsys.readouterr().err


def test_explain_reads_training_keys_from_training_arguments_and_lists_a_sections_keys(capsys):
    assert main(["explain", "training.learning_rate"]) == 0
    assert "learning rate" in capsys.readouterr().out.lower()
    assert main(["explain", "training.early_stopping_patience"]) == 0
    assert "EarlyStoppingCallback" in capsys.readouterr().out
    assert main(["explain", "qa"]) == 0
    out = capsys.readouterr().out
    assert "type:    section" in out and "doc_stride" in out and "no_answer_text" in out
    assert main(["explain", "data.source_lang"]) == 0  # a task's own key (translation)


def test_every_key_has_a_description():
    keys = explain.schema_keys()
    assert len(keys) > 60
    missing = [key for key, info in keys.items() if len(info.description.split()) < 3]
    assert not missing, f"keys without a description: {missing}"


@pytest.fixture(scope="module")
def validator():
    schema = explain.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_json_schema_accepts_every_shipped_recipe(validator, path):
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(read_yaml(path))]
    assert not errors


def test_the_json_schema_refuses_what_hfkit_refuses(validator):
    recipe = read_yaml(REPO / "recipes/generation/demo.yaml")
    for path, value in ((("data", "pakcing"), "bfd"), (("data", "packing"), "tight"), (("task",), "summarise"),
                        (("training", "learnin_rate"), 1e-3), (("peft", "r"), 0), (("training", "eval_strategy"), "often")):
        broken = json.loads(json.dumps(recipe))
        section = broken
        for part in path[:-1]:
            section = section.setdefault(part, {})
        section[path[-1]] = value
        assert list(validator.iter_errors(broken)), f"{'.'.join(path)}={value!r} passed the schema"


def test_hfkit_schema_prints_json(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["properties"]["task"]["enum"] == ["generation", "qa", "summarization", "translation"]
    assert "learning_rate" in schema["properties"]["training"]["properties"]


def test_the_key_reference_is_generated_from_the_schema():
    assert (REPO / "docs/recipe-keys.md").read_text(encoding="utf-8") == explain.markdown(), \
        "docs/recipe-keys.md is stale: regenerate it with `hfkit schema --markdown > docs/recipe-keys.md`"


def test_the_readmes_recipe_table_names_every_key_of_each_section():
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("| section | what it holds |", 1)[1].split("\n\n", 1)[0]
    keys = explain.schema_keys()
    rows = 0
    for line in table.splitlines()[2:]:
        cells = re.split(r"(?<!\\)\|", line)  # a cell may hold an escaped pipe: `lora \| none`
        section = cells[1].strip().strip("`")
        if keys.get(section) is None or not keys[section].keys:
            continue
        rows += 1
        named = set(re.findall(r"`([a-z_0-9]+)", cells[2]))
        assert set(keys[section].keys) <= named, f"README's {section} row misses {set(keys[section].keys) - named}"
    assert rows >= 8
