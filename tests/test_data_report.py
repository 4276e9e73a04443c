"""`hfkit data`: the steering bar, the same counts as training, what it shows (removed rows,
duplicate clusters, contamination with both rows, lengths, languages, examples as the model sees
them), and report.html rendered in headless Chromium."""

import json
import re
from pathlib import Path

import pytest
from support import clean_rows, record_of, steering_rows, tiny_recipe, write_jsonl

from hfkit import job
from hfkit.cli import main
from hfkit.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent


def as_demo_columns(rows: list[dict]) -> list[dict]:
    """The generation demo's file layout (its recipe maps input -> prompt, output -> completion)."""
    return [{"input": row["prompt"], "output": row["completion"]} for row in rows]


@pytest.mark.slow
def test_the_steering_bar(tmp_path):
    """60 clean English rows + 5 of a repeated phrase, 5 of symbol junk and 5 German, through the
    generation demo's recipe (SmolLM2's tokenizer) with the three filters on."""
    train, validation = steering_rows()
    write_jsonl(tmp_path / "train.jsonl", as_demo_columns(train))
    write_jsonl(tmp_path / "validation.jsonl", as_demo_columns(validation))
    out = tmp_path / "report"
    code = main(["data", str(REPO / "recipes/generation/demo.yaml"), f"data.train_file={tmp_path / 'train.jsonl'}",
                 f"data.validation_file={tmp_path / 'validation.jsonl'}", "data.format=prompt_completion",
                 "data.clean.repetition=true", "data.clean.symbols=true", "data.clean.language=en", "--output", str(out)])
    assert code == 0 and (out / "report.html").is_file()
    data = json.loads((out / "data.json").read_text())
    steps = data["cleaning"]["train"]
    for word in ("repetition", "symbol", "language"):
        (step,) = [s for s in steps if word in s["step"]]
        assert step["removed"] == 5, step
    assert steps[-1]["rows"] == 60 and data["preparation"]["train"]["examples"] == 60
    assert data["cleaning"]["validation"] == [{"step": "loaded (evaluation data is not cleaned)", "rows": 13}]
    assert data["preparation"]["validation"]["examples"] == 13  # no evaluation row removed
    assert data["removed"]["language"]["reasons"] == {"de": 5}
    assert data["languages"]["train"] == {"en": 60}


@pytest.fixture()
def messy(tmp_path, tiny_llama):
    """A tiny recipe whose training file has copies, a near copy, evaluation rows, spam, junk and German."""
    recipe = tiny_recipe(tmp_path, tiny_llama, extra="")
    clean = clean_rows(10)
    validation = clean_rows(6, offset=200)
    noise = [row for row in steering_rows()[0] if row not in clean_rows(60)]  # 5 spam, 5 junk, 5 German
    rows = clean + noise[:2] + noise[5:7] + noise[10:11]
    rows += [dict(clean[0]), dict(clean[0]), dict(clean[2])]  # exact copies: clusters of 3 and 2
    rows += [{"prompt": clean[4]["prompt"] + "!", "completion": clean[4]["completion"]}]  # a near copy
    rows += [dict(validation[1]), dict(validation[4])]  # also evaluation rows
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "validation.jsonl", validation)
    return recipe


FILTERS = ["data.max_length=256", "data.clean.repetition=true", "data.clean.symbols=true", "data.clean.language=[en]",
           "data.clean.near_dedup=true"]


def test_data_reports_what_training_records(messy, tmp_path):
    """The same counts as the recipe's training run: its metrics.json holds what data.json holds."""
    assert main(["train", str(messy), *FILTERS, "output.name=messy"]) == 0
    record = record_of(tmp_path / "runs" / next(p.name for p in (tmp_path / "runs").iterdir()))
    assert main(["data", str(messy), *FILTERS, "--output", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    assert data["cleaning"] == record.data["cleaning"] and data["preparation"] == record.data["preparation"]
    removed = {step["step"]: step.get("removed") for step in data["cleaning"]["train"]}
    assert removed == {"loaded": None, "normalize": 0, "drop_empty": 0, "repetition": 2, "symbols": 2,
                       "language": 1, "dedup": 3, "near_dedup": 1, "decontaminate": 2}
    assert data["cleaning"]["train"][-1]["rows"] == 10


def test_data_shows_clusters_matches_lengths_languages_and_examples(messy, tmp_path, tiny_llama):
    assert main(["data", str(messy), *FILTERS, "--output", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    clean, validation = clean_rows(10), clean_rows(6, offset=200)
    assert [c["size"] for c in data["duplicates"]["dedup"]] == [3, 2]
    assert data["duplicates"]["dedup"][0]["rows"] == [clean[0]] * 3
    near = data["duplicates"]["near_dedup"]
    assert len(near) == 1 and near[0]["rows"] == [clean[4], {**clean[4], "prompt": clean[4]["prompt"] + "!"}]
    matches = [(m["eval_split"], m["eval_row"], m["train"], m["eval"]) for m in data["contamination"]]
    assert matches == [("validation", 1, validation[1], validation[1]), ("validation", 4, validation[4], validation[4])]
    for step in ("repetition", "symbols", "language"):
        info = data["removed"][step]
        assert len(info["examples"]) == min(3, info["removed"]) and all(row["why"] for row in info["examples"])

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    lengths = data["lengths"]["validation"]
    prompts = [len(tokenizer(row["prompt"])["input_ids"]) for row in validation]  # with BOS, no template
    assert lengths["limits"] == {"data.max_length": 256} and lengths["prompt"]["max"] == max(prompts)
    assert data["languages"]["validation"] and sum(data["languages"]["validation"].values()) == 6

    recipe = load_recipe(messy, FILTERS)
    prepared = job.prepare(recipe, job.bind(recipe), str(tiny_llama), with_train=True)
    first = prepared.splits["train"][0]
    example = data["examples"][0]
    assert "".join(s["text"] for s in example if not s["loss"]) == tokenizer.decode(
        tokenizer(first["prompt"])["input_ids"])
    assert "".join(s["text"] for s in example if s["loss"]) == first["completion"] + tokenizer.eos_token
    assert len(data["examples"]) == 5


def test_data_on_a_stream_reads_one_pass(messy, tmp_path):
    assert main(["data", str(messy), *FILTERS[:4], "data.streaming=true", "training.max_steps=5",
                 "--output", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    removed = {step["step"]: step.get("removed") for step in data["cleaning"]["train"][1:]}
    assert removed == {"normalize": 0, "drop_empty": 0, "repetition": 2, "symbols": 2, "language": 1, "dedup": 3,
                       "decontaminate": 2}
    assert data["preparation"]["train"]["examples"] == 11 and len(data["examples"]) == 5  # the near copy stays
    assert "train" not in data["lengths"] and "data.streaming" in data["notes"][0]


DEMOS = ["generation/demo.yaml", "translation/demo.yaml", "summarization/demo.yaml", "qa/demo.yaml",
         "qa/generative_demo.yaml"]


@pytest.mark.slow
@pytest.mark.parametrize("demo", DEMOS)
def test_data_on_each_demo_counts_what_training_counts(demo, tmp_path):
    """`hfkit data` on a demo recipe: the counts `hfkit train` records for it (job.prepare's report,
    which train writes into metrics.json as it is), from a separate process and the shared cache."""
    assert main(["data", str(REPO / "recipes" / demo), "--output", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    recipe = load_recipe(REPO / "recipes" / demo)
    task = job.bind(recipe)
    prepared = job.prepare(recipe, task, job.materialize(recipe), with_train=True)
    expected = job.describe(recipe, prepared)["data"]
    assert data["cleaning"] == expected["cleaning"] and data["preparation"] == expected["preparation"]
    assert data["examples"] and all(any(s["loss"] for s in example) for example in data["examples"])
    assert set(data["lengths"]) == set(prepared.splits)


@pytest.mark.slow
def test_data_loads_no_model_weights(tmp_path, monkeypatch):
    """A GGUF alias not converted yet: only its tokenizer is saved (as the conversion saves it), no
    model class loads anything, and the counts are those of the converted tokenizer's preparation."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("hfkit data loaded model weights")

    demo = REPO / "recipes/generation/demo.yaml"
    recipe = load_recipe(demo)
    converted = job.prepare(recipe, job.bind(recipe), job.materialize(recipe), with_train=True).report
    monkeypatch.setenv("HFKIT_CACHE", str(tmp_path / "cache"))
    for name in ("AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModel"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", refuse)
    assert main(["data", str(demo), "--output", str(tmp_path / "report")]) == 0
    saved = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert saved == ["chat_template.jinja", "tokenizer.json", "tokenizer_config.json"]
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    assert data["cleaning"] == converted["cleaning"] and data["preparation"] == converted["preparation"]


def test_the_default_output_folder_is_named_after_the_run(messy, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["data", str(messy), "-q"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "data-reports" / "generation-tiny" / "report.html").is_file()
    assert "wrote data-reports/generation-tiny/report.html" in out and "Data: cleaning" in out


def test_a_bad_recipe_is_one_line_and_writes_nothing(messy, tmp_path, capsys):
    assert main(["data", str(messy), "data.clean.language=klingon", "--output", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hfkit: error: data.clean.language: 'klingon'") and err.count("\n") == 1
    assert not (tmp_path / "report").exists()


def test_an_output_that_is_a_file_is_one_line(messy, tmp_path, capsys):
    (tmp_path / "taken").write_text("notes", encoding="utf-8")
    assert main(["data", str(messy), "--output", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err == f"hfkit: error: --output: {tmp_path / 'taken'} is a file, not a folder; give a folder for the report\n"
    assert (tmp_path / "taken").read_text(encoding="utf-8") == "notes"


from test_report import CHROMIUM, FLAGS, PROBE, chromium  # noqa: E402  (the run report's headless checks)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
@pytest.mark.parametrize("width", [800, 1400])
def test_the_report_renders_in_chromium(messy, tmp_path, width):
    import numpy as np
    from PIL import Image

    assert FLAGS
    assert main(["data", str(messy), *FILTERS, "--output", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", PROBE), encoding="utf-8")
    dom = chromium([f"--window-size={width},1200", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                   tmp_path)
    found = dict(re.findall(r'data-([a-z-]+)="(\d+)"', re.search(r"<body([^>]*)>", dom).group(1)))
    assert int(found["images"]) == 4 and found["images-loaded"] == found["images"]  # steps, 2 length charts, languages
    assert int(found["page-width"]) <= int(found["view-width"])  # wide tables scroll inside their box
    sections = re.findall(r'<section id="([^"]+)"', dom)
    assert sections == ["steps", "filters", "lengths", "duplicates", "contamination", "languages", "examples"]
    assert dom.count('data-match="') == 2 and dom.count('data-example="') == 5
    assert all(f'data-step="{step}"' in dom for step in ("repetition", "symbols", "language"))
    assert dom.count('class="loss"') >= 5  # every example shows the part that carries loss

    shot = tmp_path / f"shot-{width}.png"
    chromium([f"--window-size={width},2400", f"--screenshot={shot}", (tmp_path / "report" / "report.html").as_uri()],
             tmp_path)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[1] == width and (pixels.min(axis=2) < 200).mean() > 0.05


def test_data_on_an_encoder_decoder_shows_source_and_labels(tmp_path):
    """T5: the source and target lengths against their own limits; an example's encoder input is
    context, its labels the target."""
    from support import make_tiny_seq2seq

    model = make_tiny_seq2seq(tmp_path / "t5", "t5")
    rows = [{"source": f"the cat number {i} sleeps on the warm mat", "target": f"le chat {i} dort"} for i in range(12)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "valid.jsonl", rows[:3])
    (tmp_path / "t.yaml").write_text(f"""\
task: translation
model: {{name_or_path: {model}}}
data: {{train_file: train.jsonl, validation_file: valid.jsonl, format: pairs, source_lang: en, target_lang: fr,
        max_source_length: 12,
        max_target_length: 16, source_prefix: "translate: ", clean: {{decontaminate: false}}}}
""", encoding="utf-8")
    assert main(["data", str(tmp_path / "t.yaml"), "--output", str(tmp_path / "report")]) == 0
    data = json.loads((tmp_path / "report" / "data.json").read_text())
    lengths = data["lengths"]["train"]
    assert lengths["limits"] == {"data.max_source_length": 12, "data.max_target_length": 16}
    assert lengths["prompt"]["label"] == "source tokens" and lengths["prompt"]["max"] > 12  # before the cut
    assert data["preparation"]["train"]["prompt_truncated"] == len(rows)  # every source was cut
    encoder, labels = data["examples"][0]
    assert (encoder["part"], encoder["loss"], labels["part"], labels["loss"]) == ("encoder input", False, "labels", True)
    assert (tmp_path / "report" / "lengths_train.png").is_file()
