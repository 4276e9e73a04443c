"""Recipe loading: schema, overrides, path resolution and the errors a user sees."""

import pytest

from hfkit.errors import HfkitError
from hfkit.recipe import apply_overrides, load_recipe

MINIMAL = """\
task: generation
model: {name_or_path: some/model}
data: {train_file: train.jsonl}
"""


def recipe_file(tmp_path, text=MINIMAL, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path, text, overrides=()):
    with pytest.raises(HfkitError) as info:
        load_recipe(recipe_file(tmp_path, text), overrides)
    return str(info.value)


def test_minimal_recipe_gets_defaults_and_absolute_paths(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path))
    assert recipe.peft.method == "lora" and recipe.peft.r == 8 and recipe.peft.target_modules == "all-linear"
    assert recipe.data.train_file == str(tmp_path / "train.jsonl")  # relative to the recipe file
    assert recipe.generation.max_new_tokens == 64 and recipe.eval.baseline is False
    assert recipe.run_name == "generation-r"


def test_overrides_parse_yaml_values_and_paths_relative_to_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(recipe_file(tmp_path), [
        "training.learning_rate=1e-4", "training.max_steps=7", "eval.metrics=[exact_match]",
        "peft.target_modules=[q_proj, v_proj]", "data.validation_file=sub/val.jsonl", "output.name=x",
    ])
    assert recipe.training == {"learning_rate": 1e-4, "max_steps": 7}
    assert isinstance(recipe.training["learning_rate"], float)
    assert recipe.eval.metrics == ["exact_match"]
    assert recipe.peft.target_modules == ["q_proj", "v_proj"]
    assert recipe.data.validation_file == str(tmp_path / "sub" / "val.jsonl")
    assert recipe.run_name == "x"


def test_scientific_notation_in_the_file_is_a_float(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path, MINIMAL + "training: {learning_rate: 2e-5}\n"))
    assert recipe.training["learning_rate"] == 2e-5


def test_unknown_key_names_file_path_and_closest_name(tmp_path):
    message = error_of(tmp_path, MINIMAL + "peft: {rank: 4}\n")
    assert "r.yaml" in message and "peft.rank: unknown key; valid keys: method, r, alpha" in message
    message = error_of(tmp_path, MINIMAL + "generation: {max_new_token: 4}\n")
    assert "generation.max_new_token: unknown key; did you mean 'max_new_tokens'?" in message


def test_wrong_type_and_bad_value(tmp_path):
    message = error_of(tmp_path, MINIMAL + "peft: {r: many}\n")
    assert "peft.r:" in message and "integer" in message and "'many'" in message
    message = error_of(tmp_path, MINIMAL + "peft: {method: dora}\n")
    assert "peft.method:" in message and "'lora', 'qlora' or 'none'" in message
    message = error_of(tmp_path, MINIMAL + "peft: {target_modules: 3}\n")
    assert "peft.target_modules: expected 'all-linear' or a non-empty list" in message


def test_missing_required_section(tmp_path):
    assert "model: required key is missing" in error_of(tmp_path, "task: generation\ndata: {train_file: a.jsonl}\n")


def test_unknown_task_and_metric_list_the_valid_ones(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("generation", "generaton"))
    assert "unknown task 'generaton'" in message and "did you mean 'generation'?" in message
    message = error_of(tmp_path, MINIMAL + "eval: {metrics: [exact_matc]}\n")
    assert "unknown metric 'exact_matc'" in message and "exact_match" in message


def test_data_format_must_belong_to_the_task(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace("train.jsonl}", "train.jsonl, format: squad}"))
    assert "data.format: 'squad' is not a format of task 'generation'" in message
    assert "prompt_completion" in message


def test_training_keys_are_checked_against_training_arguments(tmp_path):
    message = error_of(tmp_path, MINIMAL + "training: {evaluation_strategy: steps}\n")
    assert "training.evaluation_strategy" in message and "eval_strategy" in message
    message = error_of(tmp_path, MINIMAL + "training: {learning_rat: 0.1}\n")
    assert "did you mean 'learning_rate'?" in message
    message = error_of(tmp_path, MINIMAL + "training: {max_steps: ten}\n")
    assert "training.max_steps: expected an integer, got 'ten'" in message
    message = error_of(tmp_path, MINIMAL + "training: {output_dir: /tmp/x}\n")
    assert "output.dir" in message


def test_data_needs_exactly_one_source(tmp_path):
    message = error_of(tmp_path, "task: generation\nmodel: {name_or_path: m}\ndata: {format: text}\n")
    assert "no data" in message
    message = error_of(tmp_path, MINIMAL.replace("train.jsonl}", "train.jsonl, dataset: wikitext}"))
    assert "not both" in message


def test_run_name_cannot_escape_the_output_folder(tmp_path):
    for name in ("../evil", "/abs", "a/b"):
        assert "output.name" in error_of(tmp_path, MINIMAL + f"output: {{name: '{name}'}}\n")


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    message = error_of(tmp_path, "task: generation\nmodel: [unclosed\n")
    assert "r.yaml:3:1: YAML syntax error" in message or "r.yaml:2:" in message


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(HfkitError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    assert "must be a YAML mapping" in error_of(tmp_path, "- a\n- b\n")


@pytest.mark.parametrize("override", ["training.max_steps", "=3", "a..b=1", ".x=1"])
def test_malformed_override(override):
    with pytest.raises(HfkitError, match="malformed override"):
        apply_overrides({}, [override])


def test_override_into_a_value_is_refused():
    with pytest.raises(HfkitError, match="task is a value, not a section"):
        apply_overrides({"task": "generation"}, ["task.x=1"])


def test_resolved_recipe_round_trips(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path), ["peft.r=4"])
    again = recipe_file(tmp_path, recipe.to_yaml(), name="resolved.yaml")
    assert load_recipe(again).model_dump() == recipe.model_dump()


def test_good_values_next_to_the_refused_ones_are_accepted(tmp_path):
    recipe = load_recipe(recipe_file(tmp_path), [
        "training.max_steps=-1", "training.learning_rate=1e-4", "training.report_to=none",
        "eval.metrics=[sacrebleu, rouge, someone/metric]", "eval.trust_remote_code=true",
        "eval.metric_args={sacrebleu: {tokenize: intl}, rouge: {tokenizer: char, rouge_types: [rouge1]}}"])
    assert recipe.eval.trust_remote_code and recipe.training["max_steps"] == -1
    message = error_of(tmp_path, MINIMAL + "training: {learning_rate: .inf, per_device_eval_batch_size: 0}\n")
    assert "2 problems" in message and "got inf" in message and "per_device_eval_batch_size: got 0" in message


def test_an_empty_section_takes_its_defaults_and_an_empty_required_one_is_named(tmp_path):
    """`eval:` with every key commented out is null in YAML; it was 'Input should be a valid dictionary'."""
    recipe = load_recipe(recipe_file(tmp_path, MINIMAL + "eval:\n  # metrics: [exact_match]\ngeneration:\n"))
    assert recipe.eval.baseline is False and recipe.generation.max_new_tokens == 64
    assert "model: Input should be a valid dictionary" in error_of(tmp_path, MINIMAL.replace(
        "model: {name_or_path: some/model}", "model:"))


def test_settings_nothing_uses_are_warned_about(tmp_path, capsys):
    from hfkit.recipe import ignored_settings

    recipe = load_recipe(recipe_file(tmp_path), ["generation.temperature=0.7", "generation.top_k=5", "peft.method=none",
                                                 "peft.r=16"])
    assert ignored_settings(recipe) == [
        "generation.top_k, temperature: only sampling uses them, and generation.do_sample is false (greedy or beam "
        "search ignores it); set do_sample: true to sample",
        "peft.r: LoRA settings, ignored with peft.method: none (full fine-tuning)"]
    assert ignored_settings(load_recipe(recipe_file(tmp_path), ["generation.temperature=0.7",
                                                                "generation.do_sample=true"])) == []
    written = tmp_path / "resolved.yaml"  # a run's recipe.yaml holds every key: only real changes warn
    written.write_text(load_recipe(recipe_file(tmp_path), ["peft.method=none"]).to_yaml())
    assert ignored_settings(load_recipe(written)) == []


def test_a_recipe_file_name_becomes_a_run_name_output_name_allows(tmp_path):
    import re

    from hfkit.schema import OutputSection

    pattern = OutputSection.model_fields["name"].metadata[0].pattern
    for file_name, expected in (("my recipe ü.yaml", "generation-my-recipe-u"), ("日本語.yaml", "generation-recipe"),
                                ("a..b (copy).yaml", "generation-a..b-copy"), ("demo.yaml", "generation-demo")):
        name = load_recipe(recipe_file(tmp_path, name=file_name)).run_name
        assert name == expected and re.fullmatch(pattern, name)
