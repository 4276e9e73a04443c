"""Model cards for a run folder: huggingface_hub's ModelCard from hfkit's Jinja templates.

The metadata holds base_model, library_name, pipeline_tag, datasets, language, license, tags and a
model-index with every final metric (built with huggingface_hub's EvalResult); the body says what
the model is for, how it was trained, baseline -> final results (with their intervals and the eval
size), the exact prompt format and generation settings, and how to load it. The card reads the run
through its record and the task bound to the recorded model family (the base need not be at hand).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import yaml

from hfkit import job, models, resources, runs
from hfkit.data import BUILDERS
from hfkit.recipe import load_recipe
from hfkit.record import Evaluation, RunRecord, read_record
from hfkit.redaction import redact_value
from hfkit.results import result_rows
from hfkit.schema import Recipe


def render_card(run_dir: Path, repo_id: str | None = None, merged: bool = False):
    """The model card of a finished run, for its adapter (or its full/merged model)."""
    from huggingface_hub import ModelCard, ModelCardData

    recipe = load_recipe(run_dir / runs.RECIPE)
    record = read_record(run_dir)
    task = job.bind(recipe, record.is_encoder_decoder if record.model_family else bool(recipe.model.encoder_decoder))
    environment = runs.read_json(run_dir / runs.ENV) if (run_dir / runs.ENV).is_file() else {}
    adapter = recipe.peft.adapter and not merged
    base_id, base_note = _base_model(recipe)
    dataset_id = recipe.data.dataset or Path(recipe.data.first_file).name
    card_data = ModelCardData(
        model_name=repo_id or run_dir.name,
        base_model=base_id,
        library_name="peft" if adapter else "transformers",
        pipeline_tag=task.pipeline_tag,
        datasets=[recipe.data.dataset] if recipe.data.dataset else None,
        language=recipe.hub.language or getattr(task, "card_languages", lambda: None)(),
        license=recipe.hub.license,
        tags=["hfkit", recipe.task, *({"lora": ["lora"], "qlora": ["lora", "qlora"]}.get(recipe.peft.method, [])),
              *recipe.hub.tags],
        eval_results=eval_results(recipe, record.final, task.pipeline_tag, dataset_id),
    )
    template = "adapter_card.md.j2" if adapter else "model_card.md.j2"
    weights = run_dir / (runs.ADAPTER if recipe.peft.adapter else runs.MODEL)
    with resources.model_card_template(template) as path:
        return ModelCard.from_template(card_data, template_path=str(path), **_body(
            recipe, task, record, environment, repo_id or run_dir.name, base_id, base_note, adapter, merged,
            dataset_id, weights, _first_input(run_dir)))


def eval_results(recipe: Recipe, final: Evaluation | None, pipeline_tag: str, dataset_id: str) -> list:
    """One EvalResult per final metric, on the split the run was scored on."""
    from huggingface_hub import EvalResult

    values = final.metrics if final else {}
    # the type is what `load_dataset` takes: a Hub dataset's id, or for local files their builder (json, csv, ...)
    dataset_type = recipe.data.dataset or BUILDERS.get(Path(recipe.data.first_file).suffix.lower(), "json")
    return [
        EvalResult(task_type=pipeline_tag, dataset_type=dataset_type, dataset_name=dataset_id,
                   dataset_config=recipe.data.config, dataset_split=recipe.eval.split,
                   metric_type=name, metric_name=name, metric_value=value)
        for name, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]


def _body(recipe: Recipe, task, record: RunRecord, environment: dict, title: str, base_id: str | None,
          base_note: str, adapter: bool, merged: bool, dataset_id: str, weights: Path,
          example: str | None) -> dict[str, Any]:
    # a local checkpoint by its folder name: the path means nothing elsewhere and may say who you are
    base_name = base_id or "+".join(Path(part).name for part in recipe.model.display_name.split("+"))
    details = record.final.details if record.final else {}
    signatures = "\n".join(f"- `{k}`: `{v}`" for k, v in details.items() if k.endswith("signature"))
    tokenizer = _tokenizer(task, weights)
    return {
        "title": title,
        "base_ref": f"[{base_id}](https://huggingface.co/{base_id})" if base_id else f"`{base_name}`",
        "base_note": base_note,
        "merged": merged,
        "license": recipe.hub.license,
        "task_label": task.card_label,
        "dataset_label": (f"[{recipe.data.dataset}](https://huggingface.co/datasets/{recipe.data.dataset})"
                          if recipe.data.dataset else f"`{dataset_id}` (local files)"),
        "eval_split": recipe.eval.split,
        "eval_examples": record.eval_examples if record.eval_examples is not None else "?",
        "has_intervals": bool(record.final and record.final.intervals),
        "results_table": results_markdown(record.baseline, record.final, record.metric_names),
        "signatures": signatures,
        "usage": _usage(recipe, task, title, base_name, adapter, tokenizer, example),
        "prompt_note": task.card_usage_note(tokenizer) if tokenizer is not None else "",
        "prompt_example": _prompt_example(task, tokenizer, example),
        "training_summary": _training_summary(recipe, record),
        "recipe_yaml": public_recipe_yaml(recipe, only_changes=True).strip(),
        "cleaning_table": _cleaning_markdown(record.data.get("cleaning") or {}),
        "versions": "\n".join(f"- {name}: {version}" for name, version in
                              (environment.get("versions") or {}).items() if version),
    }


def _tokenizer(task, weights: Path):
    """The run's saved tokenizer (it tells whether prompts went through a chat template)."""
    try:
        return job.load_tokenizer(task, str(weights))
    except Exception:  # a card must still render for a run whose tokenizer cannot be read
        return None


def results_markdown(baseline: Evaluation | None, final: Evaluation | None, metric_names=()) -> str:
    """The results table (hfkit.results) as markdown."""
    lines = ["| metric | baseline | final | change |", "|---|---|---|---|"]
    for row in result_rows(baseline, final, metric_names):
        change = f"{row.change:+.4f}" if row.change is not None else ""
        lines.append(f"| {row.label} | {_number(row.baseline, row.baseline_interval)} | "
                     f"{_number(row.final, row.final_interval)} | {change} |")
    return "\n".join(lines)


def _number(value, interval) -> str:
    if value is None:
        return ""
    if not isinstance(value, float):
        return str(value)
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else f"{value:.4f}"


def _cleaning_markdown(cleaning: dict) -> str:
    lines = ["| split | step | removed | rows |", "|---|---|---|---|"]
    for split, steps in cleaning.items():
        lines += [f"| {split} | {s['step']} | {s.get('removed', '')} | {s['rows']} |" for s in steps]
    return "\n".join(lines)


def _training_summary(recipe: Recipe, record: RunRecord) -> str:
    train, parameters = record.train, record.parameters
    method = (f"{'QLoRA: LoRA on the base quantised to 4-bit NF4' if recipe.peft.method == 'qlora' else 'LoRA'} "
              f"(r={recipe.peft.r}, alpha={recipe.peft.alpha}, dropout={recipe.peft.dropout}, "
              f"target modules: {recipe.peft.target_modules}{', DoRA' if recipe.peft.use_dora else ''})"
              if recipe.peft.adapter else "full fine-tuning")
    lines = [f"- Method: {method}"]
    if parameters:
        lines.append(f"- Trainable parameters: {parameters['trainable']:,} of {parameters['total']:,}")
    if train:
        lines.append(f"- Steps: {train.steps}, {train.train_examples} training examples, "
                     f"{train.runtime_s} s ({train.samples_per_second} samples/s)")
    lines += [f"- `{key}`: {value}" for key, value in redact_value(recipe.training).items()]
    return "\n".join(lines)


def _usage(recipe: Recipe, task, repo: str, base_name: str, adapter: bool, tokenizer, example: str | None) -> str:
    """Loading code, then (for a generating task) the prompt built exactly as in training, generation
    with the decoding settings the model was scored with, and the answer decoded."""
    auto = task.auto_model
    load = (f"from peft import PeftModel\nfrom transformers import {auto}, AutoTokenizer\n\n"
            f'base = {auto}.from_pretrained("{base_name}")\n'
            f'model = PeftModel.from_pretrained(base, "{repo}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo}")') if adapter else (
            f"from transformers import {auto}, AutoTokenizer\n\n"
            f'model = {auto}.from_pretrained("{repo}")\ntokenizer = AutoTokenizer.from_pretrained("{repo}")')
    if not task.generates:
        return load
    lines = [load, ""]
    wrapping, text, _ = _prompt(task, tokenizer, example)
    if wrapping == "messages":
        lines.append('messages = [{"role": "user", "content": "..."}]  # the conversation; the model writes the next turn')
    else:
        lines.append(f"prompt = {text}")
        if wrapping == "chat":
            lines.append('messages = [{"role": "user", "content": prompt}]  # the user turn of the chat template')
    lines.append('inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", '
                 'return_dict=True)' if wrapping in ("chat", "messages") else 'inputs = tokenizer(prompt, return_tensors="pt")')
    settings = recipe.generation.model_dump(exclude_none=True, exclude={"sweep"})
    shown = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    lines += ["# the decoding settings it was scored with", f"output = model.generate(**inputs, {shown})"]
    lines.append("print(tokenizer.decode(output[0], skip_special_tokens=True))" if task.encoder_decoder else
                 'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))')
    return "\n".join(lines)


def _prompt(task, tokenizer, example: str | None) -> tuple[str, str, str]:
    """(wrapping, Python code of the prompt text, the text): the task's training template filled with
    the first eval example's input (or a placeholder)."""
    wrapping, template = task.card_prompt(tokenizer) if tokenizer is not None else ("plain", "{prompt}")
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    values = {name: example if example and len(fields) == 1 else f"<your {name}>" for name in fields}
    if fields == [template[1:-1]]:  # the template is the field itself: the text as it is
        return wrapping, repr(values[fields[0]]), values[fields[0]]
    code = f"{template!r}.format({', '.join(f'{k}={v!r}' for k, v in values.items())})"
    return wrapping, code, template.format(**values)


def _prompt_example(task, tokenizer, example: str | None) -> str:
    """The exact text the model reads for the usage example (its training format), as a text block."""
    if not task.generates or tokenizer is None:
        return ""
    wrapping, _, text = _prompt(task, tokenizer, example)
    if wrapping == "messages":
        return ""
    if wrapping == "chat":
        text = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                             tokenize=False)
    note = {"chat": "the chat template's rendering of the user turn", "encoder": "the encoder's input",
            "plain": "plain text, no template"}[wrapping]
    return f"The text the model reads for this example ({note}; the same format as in training):\n\n```text\n{text}\n```"


def _first_input(run_dir: Path) -> str | None:
    """The first eval example's input (predictions.jsonl), a real example for the usage code."""
    try:
        with (run_dir / runs.PREDICTIONS).open(encoding="utf-8") as f:
            value = json.loads(f.readline()).get("input")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _base_model(recipe: Recipe) -> tuple[str | None, str]:
    """The Hub id of the base model (None for a local folder), and what differs from it."""
    cfg = recipe.model
    if cfg.encoder_decoder:
        return None, f"a warm-started encoder-decoder of {cfg.display_name}"
    if cfg.name_or_path in models.ALIASES:
        alias = models.ALIASES[cfg.name_or_path]
        return alias.hub_id, alias.note
    if models.locate(cfg).kind == "hub":
        return cfg.name_or_path, ""
    return None, f"the local checkpoint `{Path(cfg.name_or_path).name}`"


def public_recipe_yaml(recipe: Recipe, only_changes: bool = False) -> str:
    """The recipe as published: secrets hidden, local paths reduced to names (they mean nothing
    elsewhere and may say who you are); with `only_changes`, just what differs from the defaults."""
    data = redact_value(recipe.model_dump(mode="json", exclude_defaults=only_changes))
    for key in ("train_file", "validation_file", "test_file"):
        if data.get("data", {}).get(key):
            data["data"][key] = Path(data["data"][key]).name
    name = data["model"].get("name_or_path")
    if name and Path(name).is_absolute():
        data["model"]["name_or_path"] = Path(name).name
    if data.get("output", {}).get("dir") and Path(data["output"]["dir"]).is_absolute():
        data["output"]["dir"] = Path(data["output"]["dir"]).name
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
