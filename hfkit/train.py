"""`hfkit train` and `hfkit eval`: recipe -> model and data -> Trainer -> scores -> run folder.

Read top to bottom, `train` is the whole job, the way transformers' example scripts read.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from hfkit import data, models, runs, tasks
from hfkit.errors import HfkitError
from hfkit.evaluation import results_table, score
from hfkit.recipe import Recipe, load_recipe
from hfkit.tasks import GenerationInputs, Task

console = Console()


@dataclass
class Prepared:
    """Everything a Trainer needs besides the model: tokenizer, raw and tokenized splits."""

    task: Task
    fmt: str
    tokenizer: Any
    splits: Any  # DatasetDict of cleaned examples
    cleaning: dict[str, Any]
    train_dataset: Any  # tokenized, or None when only evaluating
    eval_dataset: Any  # tokenized eval split
    eval_inputs: GenerationInputs | None
    metric_names: list[str]


def prepare(recipe: Recipe, tokenizer_path: str, with_train: bool) -> Prepared:
    """Load the tokenizer and data, clean it and tokenize what the job needs."""
    from accelerate import PartialState

    task = tasks.for_recipe(recipe)
    fmt = task.format_of(recipe)
    tokenizer = models.load_tokenizer(tokenizer_path, recipe.model)
    with PartialState().main_process_first():  # build the datasets caches once, then reuse them on other ranks
        splits, cleaning = load_data(recipe, task, fmt)
        eval_split = recipe.eval.split
        if eval_split not in splits:
            raise HfkitError(f"eval.split: there is no {eval_split} split; set data.{eval_split}_file "
                             f"(or data.{eval_split}_split for a Hub dataset)")
        if with_train and "train" not in splits:
            raise HfkitError("data: training needs a train split; set data.train_file or data.dataset")
        train_dataset = task.preprocess(splits["train"], tokenizer, recipe, fmt) if with_train else None
        eval_dataset = task.preprocess(splits[eval_split], tokenizer, recipe, fmt)
    eval_inputs = task.generation_inputs(splits[eval_split], tokenizer, recipe, fmt)
    metric_names = recipe.eval.metrics if recipe.eval.metrics is not None else task.default_metrics(recipe)
    return Prepared(task, fmt, tokenizer, splits, cleaning, train_dataset, eval_dataset, eval_inputs, metric_names)


def load_data(recipe: Recipe, task: Task, fmt: str):
    """The recipe's cleaned splits in the task's fields, and the cleaning counts."""
    convert = (lambda ds: task.convert(ds, recipe, fmt)) if task.convert else None
    return data.load_splits(recipe.data, task.fields(fmt), task.text_fields(fmt), seed=recipe.training.get("seed", 42),
                            convert=convert, optional=task.optional_fields, normalize_fields=task.normalize_fields)


def training_arguments(recipe: Recipe, task: Task, output_dir: Path):
    """`TrainingArguments` straight from the recipe's `training` section; hfkit only sets output_dir."""
    try:
        return task.training_args_class()(output_dir=str(output_dir), **recipe.training)
    except (TypeError, ValueError) as err:
        raise HfkitError(f"training: {err}") from None


def make_trainer(recipe: Recipe, prepared: Prepared, model, output_dir: Path):
    return prepared.task.trainer_class()(
        model=model,
        args=training_arguments(recipe, prepared.task, output_dir),
        train_dataset=prepared.train_dataset,
        eval_dataset=prepared.eval_dataset,
        data_collator=prepared.task.collator(prepared.tokenizer, model),
        processing_class=prepared.tokenizer,
    )


def train(recipe: Recipe, overwrite: bool = False, command: list[str] | None = None) -> Path:
    """Fine-tune the recipe's model and write a complete run folder; returns its path."""
    from transformers import set_seed

    run_dir = _create_run_dir(recipe, overwrite)
    is_main = _is_main_process()
    if is_main:
        runs.write_text(run_dir / runs.RECIPE, recipe.to_yaml())
    set_seed(recipe.training.get("seed", 42))

    model_path = _materialize(recipe)
    prepared = prepare(recipe, model_path, with_train=True)
    _print_cleaning(prepared.cleaning)
    model = models.load_base_model(recipe.model, prepared.task.auto_model, prepared.tokenizer)
    method = recipe.peft.method
    if method == "lora":
        model = models.add_lora(model, recipe.peft, prepared.task.peft_task_type)
    trainable, total = models.count_parameters(model)
    console.print(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%, {method})")

    trainer = make_trainer(recipe, prepared, model, run_dir)
    baseline = None
    if recipe.eval.baseline:
        console.print("Scoring the untuned model (eval.baseline: true)")
        baseline = score(trainer, prepared, recipe)
    started = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - started
    partial = run_dir / runs.PARTIAL_PREDICTIONS if is_main else None
    final = score(trainer, prepared, recipe, stream_to=partial)

    if trainer.is_world_process_zero():
        weights_dir = run_dir / (runs.ADAPTER if method == "lora" else runs.MODEL)
        trainer.save_model(str(weights_dir))  # a PeftModel saves only its adapter
        prepared.tokenizer.save_pretrained(str(weights_dir))
        runs.write_jsonl(run_dir / runs.PREDICTIONS, final.predictions)
        partial.unlink(missing_ok=True)
        runs.write_json(run_dir / runs.METRICS, {
            **_describe(recipe, prepared),
            "method": method,
            "baseline": baseline.metrics if baseline else None,
            "final": final.metrics,
            "details": {"baseline": baseline.details if baseline else None, "final": final.details},
            "train": {
                "runtime_s": round(train_seconds, 2),
                "samples_per_second": result.metrics.get("train_samples_per_second"),
                "steps": result.global_step,
                "train_loss": result.training_loss,
                "train_examples": len(prepared.train_dataset),
            },
            "peak_memory_mb": runs.peak_memory_mb(),
            "parameters": {"trainable": trainable, "total": total},
            "cleaning": prepared.cleaning,
            "log_history": trainer.state.log_history,
        })
        runs.write_json(run_dir / runs.ENV, _env(trainer, command))
        console.print(results_table(baseline, final, title=f"{recipe.run_name}: {recipe.eval.split} split"))
        console.print(f"Run folder: {run_dir}")
    return run_dir


def evaluate(target: str, overrides: list[str], overwrite: bool = False, command: list[str] | None = None) -> Path:
    """Score without training: a finished run (its adapter or model) or a recipe's model (zero-shot).

    A run is scored into `RUN/eval-<UTC time>/`; a recipe gets a new run folder whose
    metrics.json holds the scores as `baseline` (nothing was trained).
    """
    target_path = Path(target)
    if runs.is_run_dir(target_path):
        recipe = load_recipe(target_path / runs.RECIPE, overrides)
        weights = next((target_path / d for d in (runs.ADAPTER, runs.MODEL) if (target_path / d).is_dir()), None)
        if weights is None:
            raise HfkitError(f"{target}: the run has no {runs.ADAPTER}/ or {runs.MODEL}/ folder (did training finish?)")
        out_dir = target_path / f"eval-{runs.utc_stamp()}"
    else:
        recipe = load_recipe(target_path, overrides)
        weights = None
        out_dir = _create_run_dir(recipe, overwrite)

    base_path = _materialize(recipe)
    prepared = prepare(recipe, str(weights) if weights else base_path, with_train=False)
    if weights is not None and weights.name == runs.MODEL:
        model = models.load_model(str(weights), recipe.model, prepared.task.auto_model)
    else:
        model = models.load_base_model(recipe.model, prepared.task.auto_model, prepared.tokenizer)
        if weights is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(weights))
    trainer = make_trainer(recipe, prepared, model, out_dir)
    is_main = trainer.is_world_process_zero()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / runs.PARTIAL_PREDICTIONS if is_main else None
    scores = score(trainer, prepared, recipe, stream_to=partial)
    if is_main:
        if weights is None:
            runs.write_text(out_dir / runs.RECIPE, recipe.to_yaml())
        runs.write_jsonl(out_dir / runs.PREDICTIONS, scores.predictions)
        partial.unlink(missing_ok=True)
        # A recipe's untrained model is a baseline; a finished run's model is a final result.
        stage = "final" if weights is not None else "baseline"
        runs.write_json(out_dir / runs.METRICS, {
            **_describe(recipe, prepared), "baseline": None, "final": None, stage: scores.metrics,
            "details": {stage: scores.details}, "peak_memory_mb": runs.peak_memory_mb(),
        })
        runs.write_json(out_dir / runs.ENV, _env(trainer, command))
        tables = {"baseline": None, "final": None, stage: scores}
        console.print(results_table(tables["baseline"], tables["final"], title=f"{target}: {recipe.eval.split}"))
        console.print(f"Scores written to: {out_dir}")
    return out_dir


def _describe(recipe: Recipe, prepared: Prepared) -> dict[str, Any]:
    first_file = recipe.data.train_file or recipe.data.validation_file or recipe.data.test_file
    return {
        "task": recipe.task,
        "format": prepared.fmt,
        "model": recipe.model.display_name,
        "dataset": recipe.data.dataset or Path(first_file).name,
        "eval_split": recipe.eval.split,
        "eval_examples": len(prepared.splits[recipe.eval.split]),
        "metrics": prepared.metric_names,
    }


def _materialize(recipe: Recipe) -> str:
    from accelerate import PartialState

    with PartialState().main_process_first():  # convert a GGUF once, not once per process
        return models.materialize(recipe.model)


def _create_run_dir(recipe: Recipe, overwrite: bool) -> Path:
    """The main process creates the run folder; every process learns its path."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    path = [None]
    if state.is_main_process:
        path = [str(runs.create_run_dir(recipe.output.dir, recipe.run_name, recipe.output.timestamp, overwrite))]
    if state.num_processes > 1:
        broadcast_object_list(path)
    return Path(path[0])


def _is_main_process() -> bool:
    from accelerate import PartialState

    return PartialState().is_main_process


def _env(trainer, command: list[str] | None) -> dict[str, Any]:
    args = trainer.args
    return runs.env_info(seed=args.seed, world_size=args.world_size,
                         distributed_type=str(args.parallel_mode.value if args.parallel_mode else "not_parallel"),
                         device=str(args.device), command=command if command is not None else sys.argv)


def _print_cleaning(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="Data cleaning")
    for column in ("split", "step", "removed", "rows"):
        table.add_column(column, justify="left" if column in ("split", "step") else "right")
    for split, steps in report.items():
        for step in steps:
            table.add_row(split, step["step"], str(step.get("removed", "")), str(step["rows"]))
    console.print(table)
