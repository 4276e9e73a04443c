"""Model cards for a run folder: huggingface_hub's ModelCard from hfkit's Jinja templates.

The metadata holds base_model, library_name, pipeline_tag, datasets, language, license, tags and a
model-index with every final metric (built with huggingface_hub's EvalResult); the body says what
the model is for, how it was trained, baseline -> final results and how to load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hfkit import models, runs
from hfkit.errors import HfkitError
from hfkit.recipe import Recipe, load_recipe

TEMPLATES = Path(__file__).resolve().parent.parent / "model_cards"
TASK_LABELS = {"generation": "text generation", "translation": "translation", "summarization": "summarization",
               "qa": "question answering"}


def render_card(run_dir: Path, repo_id: str | None = None, merged: bool = False):
    """The model card of a finished run, for its adapter (or its full/merged model)."""
    from huggingface_hub import ModelCard, ModelCardData

    recipe = load_recipe(run_dir / runs.RECIPE)
    metrics = runs.read_json(run_dir / runs.METRICS)
    environment = runs.read_json(run_dir / runs.ENV) if (run_dir / runs.ENV).is_file() else {}
    adapter = recipe.peft.method == "lora" and not merged
    base_id, base_note = _base_model(recipe)
    pipeline_tag = _pipeline_tag(recipe)
    dataset_id = recipe.data.dataset or Path(recipe.data.train_file or recipe.data.validation_file).stem
    card_data = ModelCardData(
        model_name=repo_id or run_dir.name,
        base_model=base_id,
        library_name="peft" if adapter else "transformers",
        pipeline_tag=pipeline_tag,
        datasets=[recipe.data.dataset] if recipe.data.dataset else None,
        language=_languages(recipe),
        license=recipe.hub.license,
        tags=["hfkit", recipe.task, *(["lora"] if recipe.peft.method == "lora" else []), *recipe.hub.tags],
        eval_results=eval_results(recipe, metrics, pipeline_tag, dataset_id),
    )
    template = TEMPLATES / ("adapter_card.md.j2" if adapter else "model_card.md.j2")
    return ModelCard.from_template(card_data, template_path=str(template), **_body(
        recipe, metrics, environment, repo_id or run_dir.name, base_id, base_note, adapter, merged))


def eval_results(recipe: Recipe, metrics: dict, pipeline_tag: str, dataset_id: str) -> list:
    """One EvalResult per final metric, on the split the run was scored on."""
    from huggingface_hub import EvalResult

    final = metrics.get("final") or {}
    return [
        EvalResult(task_type=pipeline_tag, dataset_type=dataset_id, dataset_name=dataset_id,
                   dataset_config=recipe.data.config, dataset_split=recipe.eval.split,
                   metric_type=name, metric_name=name, metric_value=value)
        for name, value in final.items() if isinstance(value, (int, float)) and not isinstance(value, bool)
    ]


def _body(recipe: Recipe, metrics: dict, environment: dict, title: str, base_id: str | None, base_note: str,
          adapter: bool, merged: bool) -> dict[str, Any]:
    base_name = base_id or recipe.model.display_name
    details = ((metrics.get("details") or {}).get("final")) or {}
    signatures = "\n".join(f"- `{k}`: `{v}`" for k, v in details.items() if k.endswith("signature"))
    return {
        "title": title,
        "base_name": base_name,
        "base_link": f"https://huggingface.co/{base_id}" if base_id else "#",
        "base_note": base_note,
        "merged": merged,
        "task_label": TASK_LABELS.get(recipe.task, recipe.task),
        "dataset_label": (f"[{recipe.data.dataset}](https://huggingface.co/datasets/{recipe.data.dataset})"
                          if recipe.data.dataset else f"`{metrics.get('dataset', 'local data')}` (local files)"),
        "eval_split": recipe.eval.split,
        "eval_examples": metrics.get("eval_examples", "?"),
        "results_table": results_markdown(metrics.get("baseline"), metrics.get("final")),
        "signatures": signatures,
        "usage": _usage(recipe, title, base_name, adapter),
        "training_summary": _training_summary(recipe, metrics),
        "recipe_yaml": public_recipe_yaml(recipe, only_changes=True).strip(),
        "cleaning_table": _cleaning_markdown(metrics.get("cleaning") or {}),
        "versions": "\n".join(f"- {name}: {version}" for name, version in
                              (environment.get("versions") or {}).items() if version),
    }


def results_markdown(baseline: dict | None, final: dict | None) -> str:
    baseline, final = baseline or {}, final or {}
    lines = ["| metric | baseline | final | change |", "|---|---|---|---|"]
    for key in dict.fromkeys([*baseline, *final]):
        before, after = baseline.get(key), final.get(key)
        change = f"{after - before:+.4f}" if isinstance(before, (int, float)) and isinstance(after, (int, float)) else ""
        lines.append(f"| {key} | {_number(before)} | {_number(after)} | {change} |")
    return "\n".join(lines)


def _number(value) -> str:
    return "" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _cleaning_markdown(cleaning: dict) -> str:
    lines = ["| split | step | removed | rows |", "|---|---|---|---|"]
    for split, steps in cleaning.items():
        lines += [f"| {split} | {s['step']} | {s.get('removed', '')} | {s['rows']} |" for s in steps]
    return "\n".join(lines)


def _training_summary(recipe: Recipe, metrics: dict) -> str:
    train = metrics.get("train") or {}
    parameters = metrics.get("parameters") or {}
    method = (f"LoRA (r={recipe.peft.r}, alpha={recipe.peft.alpha}, dropout={recipe.peft.dropout}, "
              f"target modules: {recipe.peft.target_modules}{', DoRA' if recipe.peft.use_dora else ''})"
              if recipe.peft.method == "lora" else "full fine-tuning")
    lines = [f"- Method: {method}"]
    if parameters:
        lines.append(f"- Trainable parameters: {parameters['trainable']:,} of {parameters['total']:,}")
    if train:
        lines.append(f"- Steps: {train.get('steps')}, {train.get('train_examples')} training examples, "
                     f"{train.get('runtime_s')} s ({train.get('samples_per_second')} samples/s)")
    lines += [f"- `{key}`: {value}" for key, value in recipe.training.items()]
    return "\n".join(lines)


def _usage(recipe: Recipe, repo: str, base_name: str, adapter: bool) -> str:
    auto = _auto_class(recipe)
    if adapter:
        return (f"from peft import PeftModel\nfrom transformers import {auto}, AutoTokenizer\n\n"
                f'base = {auto}.from_pretrained("{base_name}")\n'
                f'model = PeftModel.from_pretrained(base, "{repo}")\n'
                f'tokenizer = AutoTokenizer.from_pretrained("{repo}")')
    return (f"from transformers import {auto}, AutoTokenizer\n\n"
            f'model = {auto}.from_pretrained("{repo}")\ntokenizer = AutoTokenizer.from_pretrained("{repo}")')


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


def _auto_class(recipe: Recipe) -> str:
    """The transformers class that loads what was trained."""
    if recipe.task == "qa" and recipe.qa.mode == "extractive":
        return "AutoModelForQuestionAnswering"
    if recipe.task != "generation" and _is_seq2seq(recipe):
        return "AutoModelForSeq2SeqLM"
    return "AutoModelForCausalLM"


def _pipeline_tag(recipe: Recipe) -> str:
    """The Hub's pipeline tag: what the uploaded model does when called."""
    auto = _auto_class(recipe)
    if auto == "AutoModelForQuestionAnswering":
        return "question-answering"
    if auto == "AutoModelForSeq2SeqLM":
        return {"qa": "text2text-generation"}.get(recipe.task, recipe.task)
    return "text-generation"


def _is_seq2seq(recipe: Recipe) -> bool:
    try:
        return models.is_encoder_decoder(recipe.model)
    except HfkitError:  # the base is not reachable here (offline, not cached): decide by the recipe alone
        return bool(recipe.model.encoder_decoder)


def _languages(recipe: Recipe) -> list[str] | None:
    if recipe.hub.language:
        return recipe.hub.language
    if recipe.task == "translation":
        return [recipe.data.source_lang, recipe.data.target_lang]
    return None


def public_recipe_yaml(recipe: Recipe, only_changes: bool = False) -> str:
    """The recipe as published: local paths reduced to names (they mean nothing elsewhere and may
    say who you are); with `only_changes`, just what differs from the defaults."""
    data = recipe.model_dump(mode="json", exclude_defaults=only_changes)
    for key in ("train_file", "validation_file", "test_file"):
        if data.get("data", {}).get(key):
            data["data"][key] = Path(data["data"][key]).name
    name = data["model"].get("name_or_path")
    if name and Path(name).is_absolute():
        data["model"]["name_or_path"] = Path(name).name
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
