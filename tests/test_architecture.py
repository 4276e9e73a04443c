"""The structure: layers without import loops, a task added from outside hfkit/, the run record's schema."""

import ast
import json
from pathlib import Path

import pytest
from datasets import Dataset
from support import jsonl, record_of, write_jsonl

from hfkit import tasks
from hfkit.cli import main
from hfkit.tasks.pairs import PairTask

PACKAGE = Path(__file__).resolve().parent.parent / "hfkit"

README = PACKAGE.parent / "README.md"


def readme_layers() -> list[set[str]]:
    """The rows of the README's "How it is built" block, lowest layer first: the one source of the layers.

    A row is `name, name, ...   what they do`: names before the first run of two spaces."""
    text = README.read_text(encoding="utf-8").split("## How it is built", 1)[1]
    block = text.split("```", 2)[1]
    rows = [line.split("  ", 1)[0] for line in block.splitlines()[1:] if line.strip()]
    return [{name.strip().rstrip("/") for name in row.split(",")} for row in reversed(rows)]


# Lower layers never import higher ones; a module may import its own layer when no loop forms.
LAYERS = readme_layers()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every hfkit module `path` imports, at the top or inside a function."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("hfkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hfkit"):
            for alias in node.names:  # `from hfkit import job` imports hfkit.job; `from hfkit.x import f`, hfkit.x
                name = f"{node.module}.{alias.name}"
                found.add(name if name in modules else node.module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py") if "metrics/" not in str(p.relative_to(PACKAGE))
               or (p.parent / "__init__.py").is_file()}  # not the `evaluate` scripts in metrics/<name>/
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    for i, layer in enumerate(LAYERS):
        if key in layer:
            return i
    raise AssertionError(f"hfkit/{key} is in no layer: add it to a row of the README's 'How it is built' block "
                         "(the layer whose modules it imports, or one above)")


def test_hfkit_imports_form_no_cycle_and_never_reach_up_a_layer():
    graph = import_graph()
    assert len(graph) > 25
    upward = [(a, b) for a, targets in graph.items() for b in targets
              if layer_of(a) < layer_of(b) and not b.startswith(a + ".")]
    assert not upward, f"imports from a lower layer to a higher one: {upward}"
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for target in graph[node]:
            if state.get(target) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path + [node, target])}")
            if target not in state:
                visit(target, path + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_compare_and_its_tables_load_no_model():
    """`hfkit compare` reads run folders: nothing it imports, however indirectly, loads or runs a model."""
    graph = import_graph()
    reached, todo = set(), ["hfkit.compare", "hfkit.tables", "hfkit.report_html", "hfkit.charts", "hfkit.sweep_table"]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph.get(module, ())
    loaders = {"hfkit.job", "hfkit.models", "hfkit.training", "hfkit.evaluation", "hfkit.sweep", "hfkit.scoring",
               "hfkit.trainer", "hfkit.lora", "hfkit.qlora", "hfkit.generation"}
    assert not reached & loaders, f"compare reaches modules that load models: {sorted(reached & loaders)}"


def test_every_module_has_a_layer_and_every_layer_has_modules():
    graph = import_graph()
    for module in graph:
        layer_of(module)  # raises, naming the module, when the README has no row for it
    named = {name for layer in LAYERS for name in layer}
    exists = {m.split(".")[1] if "." in m else "__init__" for m in graph}
    assert named <= exists, f"the README names modules that do not exist: {sorted(named - exists)}"
    assert len(LAYERS) == 9


def test_a_module_missing_from_the_layers_is_named_in_the_failure():
    with pytest.raises(AssertionError, match="hfkit/not_a_module is in no layer"):
        layer_of("hfkit.not_a_module")


def test_the_schema_is_a_leaf():
    assert imports_of(PACKAGE / "schema.py") == {"hfkit.schema_clean"}  # its data.clean section
    assert imports_of(PACKAGE / "schema_clean.py") == set()
    assert imports_of(PACKAGE / "errors.py") == set()


def test_no_module_is_over_400_lines():
    long = {p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


class ReverseWords(PairTask):
    """A task written outside hfkit/: learn to write a sentence's words in reverse order."""

    name = "reverse"
    formats = ("lines",)
    card_label = "word reversal"
    templates = {"seq2seq": "{source}", "chat": "Reverse the words:\n{source}", "plain": "Reverse the words:\n{source}\nReversed:\n"}

    def fields(self):
        return ("text",)

    def text_fields(self):
        return ("source", "target")

    def default_metrics(self):
        return ["exact_match"]

    def convert(self, ds):
        return ds.map(lambda row: {"source": row["text"], "target": " ".join(reversed(row["text"].split()))},
                      remove_columns=["text"])

    def pairs(self, ds, style):
        template = self.template(style)
        return ds.map(lambda row: {"source": template.format(source=row["source"]), "target": row["target"]})


def test_a_task_is_one_class_and_one_registry_line(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks, "_REGISTERED", dict(tasks._REGISTERED))  # the task leaves with the test (test_explain lists tasks)
    tasks.register("reverse", ReverseWords)
    words = ["red green blue", "one two three", "cat dog", "sun moon star", "a b c d"]
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"{w} {i}"} for i, w in enumerate(words * 4)])
    write_jsonl(tmp_path / "valid.jsonl", [{"text": "left right"}, {"text": "up down"}])
    (tmp_path / "r.yaml").write_text(f"""\
task: reverse
model: {{name_or_path: {tiny_llama}}}
data: {{train_file: train.jsonl, validation_file: valid.jsonl}}
training: {{max_steps: 2, per_device_train_batch_size: 4, save_strategy: "no", report_to: none}}
generation: {{max_new_tokens: 4}}
output: {{dir: {tmp_path / "runs"}}}
""", encoding="utf-8")
    assert "reverse" in tasks.names()
    assert main(["train", str(tmp_path / "r.yaml")]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    record = record_of(run)
    assert record.task == "reverse" and "exact_match" in record.final.metrics
    assert [row["reference"] for row in jsonl(run / "predictions.jsonl")] == ["right left", "down up"]
    from hfkit.cards import render_card

    assert "fine-tuned for **word reversal**" in str(render_card(run, repo_id="me/reverse"))


# A metrics.json as hfkit 0.1 (schema 1) wrote it.
SCHEMA_1 = {
    "task": "translation", "format": "wmt", "model": "smollm2-135m-instruct", "dataset": "en_fr_train.jsonl",
    "eval_split": "validation", "eval_examples": 60, "metrics": ["sacrebleu", "chrf"], "status": "complete",
    "method": "lora", "baseline": {"eval_loss": 2.4, "perplexity": 11.0, "sacrebleu": 1.99, "chrf": 17.19},
    "final": {"eval_loss": 0.1, "perplexity": 1.1, "sacrebleu": 92.46, "chrf": 95.24},
    "details": {"baseline": {"sacrebleu_signature": "nrefs:1|case:mixed"}, "final": {"sacrebleu_signature": "nrefs:1|x"}},
    "train": {"runtime_s": 100.0, "samples_per_second": 4.0, "tokens_per_second": None, "steps": 50,
              "train_loss": 0.3, "train_examples": 400, "resumed_from": None},
    "peak_memory_mb": {"rss": 2100.0}, "parameters": {"trainable": 4884480, "total": 139399488},
    "model_dtype": "bfloat16", "attention": "sdpa",
    "cleaning": {"train": [{"step": "loaded", "rows": 400}]}, "log_history": [{"step": 10, "loss": 1.2}],
}


def test_a_run_written_by_hfkit_0_1_still_loads(tmp_path):
    from hfkit import compare
    from hfkit.record import read_record

    run = tmp_path / "translation-demo"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps(SCHEMA_1), encoding="utf-8")
    (run / "recipe.yaml").write_text("task: translation\n", encoding="utf-8")
    record = read_record(run)
    assert record.schema_version == 2 and record.final.metrics["sacrebleu"] == 92.46
    assert record.baseline.details == {"sacrebleu_signature": "nrefs:1|case:mixed"}
    assert record.metric_names == ["sacrebleu", "chrf"] and record.data["cleaning"]["train"][0]["rows"] == 400
    summary = compare.summarize(run)
    assert summary.metrics["sacrebleu"] == (1.99, 92.46) and summary.info["status"] == "complete"


@pytest.mark.parametrize("content, expected", [("{not json", "cannot be read"), ('{"status": "sleeping"}', "status")])
def test_a_corrupt_record_is_reported_not_shown_blank(tmp_path, content, expected):
    from hfkit import compare

    run = tmp_path / "broken"
    run.mkdir()
    (run / "recipe.yaml").write_text("task: generation\n", encoding="utf-8")
    (run / "metrics.json").write_text(content, encoding="utf-8")
    assert expected in compare.summarize(run).info["status"]


def test_the_python_api_returns_the_run_record_and_works_off_the_main_thread(tiny_llama, tmp_path):
    import threading

    import hfkit

    write_jsonl(tmp_path / "t.jsonl", [{"prompt": f"p {i}", "completion": f"c {i}"} for i in range(8)])
    recipe = {"task": "generation", "model": {"name_or_path": str(tiny_llama)},
              "data": {"train_file": str(tmp_path / "t.jsonl"), "validation_fraction": 0.25},
              "training": {"max_steps": 1, "per_device_train_batch_size": 2, "report_to": "none"},
              "generation": {"max_new_tokens": 2}, "output": {"dir": str(tmp_path / "runs")}}
    results = {}
    worker = threading.Thread(target=lambda: results.update(record=hfkit.train(recipe, overrides=["peft.r=2"])))
    worker.start()
    worker.join()
    record = results["record"]
    assert record.status == "complete" and record.path.parent == tmp_path / "runs"
    assert record.final.metrics == record_of(record.path).final.metrics
    assert hfkit.load_recipe(recipe, ["peft.r=2"]).peft.r == 2
    again = hfkit.evaluate(record.path)
    assert again.final.metrics["exact_match"] == record.final.metrics["exact_match"]


def test_the_readme_and_benchmarks_speak_of_the_project_only():
    """Plain statements ("not yet measured on a GPU"), not how the work was organised."""
    import re

    root = PACKAGE.parent
    texts = [root / "README.md", *sorted((root / "benchmarks").glob("*.py")), *sorted((root / "benchmarks").glob("*.sh")),
             root / "benchmarks" / "README.md", *sorted((root / "docs").glob("*.md"))]
    phrases = re.compile(r"\blent\b|\bpremise\b|\bthis session\b|\bthe issue\b|\bissue's\b|\bsteering\b", re.IGNORECASE)
    found = [(path.name, match.group()) for path in texts for match in phrases.finditer(path.read_text(encoding="utf-8"))]
    assert not found, found
