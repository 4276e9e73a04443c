"""`hfkit train` and `hfkit eval`: recipe -> model and data -> Trainer -> scores -> run folder.

Read top to bottom, `train` is the whole job, the way transformers' example scripts read.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from transformers import TrainerCallback

from hfkit import data, distributed, lora, models, runs, tasks
from hfkit.errors import HfkitError, Interrupted
from hfkit.evaluation import Scores, results_table, score
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


def prepare(recipe: Recipe, task: Task, tokenizer_path: str, with_train: bool) -> Prepared:
    """Load the tokenizer and data, clean it and tokenize what the job needs."""
    fmt = task.format_of(recipe)
    tokenizer = models.load_tokenizer(tokenizer_path, recipe.model)
    with distributed.state().main_process_first():  # build the datasets caches once; other ranks reuse them
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


def training_arguments(recipe: Recipe, task: Task, output_dir: Path | None = None):
    """`TrainingArguments` straight from the recipe's `training` section.

    hfkit sets output_dir (the run folder) and, unless the recipe sets them, two defaults:
    `train_sampling_strategy: group_by_length` for tasks whose examples vary in length (not packed
    text, not extractive QA's windows), and `use_cpu` when several processes are launched on a
    machine without an accelerator, because only then does accelerate join them over gloo.
    Building it also sets up the (distributed) state every later step relies on.
    """
    kwargs = dict(recipe.training)
    if "use_cpu" not in kwargs and distributed.launched_without_accelerator():
        kwargs["use_cpu"] = True
    if "train_sampling_strategy" not in kwargs and task.group_by_length and task.format_of(recipe) != "text":
        kwargs["train_sampling_strategy"] = "group_by_length"  # batches of similar lengths: less padding
    try:
        args = task.training_args_class()(output_dir=str(output_dir) if output_dir else None, **kwargs)
    except (TypeError, ValueError) as err:
        raise HfkitError(f"training: {err}") from None
    args.world_size  # noqa: B018 - sets up the process group now, before any process-dependent step
    return args


def make_trainer(args, prepared: Prepared, model):
    return prepared.task.trainer_class()(
        model=model,
        args=args,
        train_dataset=prepared.train_dataset,
        eval_dataset=prepared.eval_dataset,
        data_collator=prepared.task.collator(prepared.tokenizer, model),
        processing_class=prepared.tokenizer,
    )


def train(recipe: Recipe, overwrite: bool = False, command: list[str] | None = None,
          resume: Path | None = None) -> Path:
    """Fine-tune the recipe's model and write a complete run folder; returns its path.

    With `resume` (a run folder), training continues that folder from its last complete checkpoint:
    model, optimizer, scheduler, RNG and data position as Trainer saved them.
    """
    from transformers import set_seed

    task = tasks.for_recipe(recipe)
    args = training_arguments(recipe, task)
    # Converting a GGUF first lets the length check read the converted config instead of parsing the GGUF.
    model_path = _materialize(recipe)
    models.check_lengths(task.lengths(recipe), models.load_config(recipe.model))
    run_dir, checkpoint = _run_dir_and_checkpoint(recipe, overwrite, resume)
    args.output_dir = str(run_dir)
    is_main = distributed.is_main()
    if is_main:
        runs.write_text(run_dir / runs.RECIPE, recipe.to_yaml())
    set_seed(args.seed)

    prepared = prepare(recipe, task, model_path, with_train=True)
    _say(_cleaning_table(prepared.cleaning))
    dtype = lora.frozen_base_dtype(recipe.model, recipe.peft, task.peft_task_type)
    if dtype is not None:
        _say("LoRA: the frozen base weights are loaded in bfloat16 (model.dtype: float32 keeps them fp32)")
    model = models.load_base_model(recipe.model, task.auto_model, prepared.tokenizer, dtype=dtype)
    method = recipe.peft.method
    if method == "lora":
        model = lora.add_lora(model, recipe.peft, prepared.task.peft_task_type)
    trainable, total = lora.count_parameters(model)
    _say(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%, {method})")

    trainer = make_trainer(args, prepared, model)
    baseline = _baseline(trainer, prepared, recipe, run_dir, resumed=resume is not None)
    started = time.perf_counter()
    stop = StopOnInterrupt()
    trainer.add_callback(stop)
    with stop.listening():
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    train_seconds = time.perf_counter() - started
    if stop.requested:
        _mark_interrupted(run_dir, trainer)
    partial = run_dir / runs.PARTIAL_PREDICTIONS if is_main else None
    final = score(trainer, prepared, recipe, stream_to=partial)

    weights_dir = run_dir / (runs.ADAPTER if method == "lora" else runs.MODEL)
    trainer.save_model(str(weights_dir))  # on every process: ZeRO-3 and FSDP gather the weights together
    environment = _env(trainer, command)  # gathers every process's device
    if is_main:
        if method == "lora":
            lora.check_saved_adapter(weights_dir)
        prepared.tokenizer.save_pretrained(str(weights_dir))
        runs.write_jsonl(run_dir / runs.PREDICTIONS, final.predictions)
        partial.unlink(missing_ok=True)
        runs.write_json(run_dir / runs.METRICS, {
            **_describe(recipe, prepared),
            "status": "complete",
            "method": method,
            "baseline": baseline.metrics if baseline else None,
            "final": final.metrics,
            "details": {"baseline": baseline.details if baseline else None, "final": final.details},
            "train": {
                "runtime_s": round(train_seconds, 2),
                "samples_per_second": result.metrics.get("train_samples_per_second"),
                # only when the recipe sets training.include_num_input_tokens_seen
                "tokens_per_second": (round(trainer.state.num_input_tokens_seen / train_seconds, 1)
                                      if trainer.state.num_input_tokens_seen else None),
                "steps": result.global_step,
                "train_loss": result.training_loss,
                "train_examples": len(prepared.train_dataset),
                "resumed_from": checkpoint.name if checkpoint else None,
            },
            "peak_memory_mb": runs.peak_memory_mb(),
            "parameters": {"trainable": trainable, "total": total},
            "model_dtype": str(model.dtype).removeprefix("torch."),
            "attention": getattr(model.config, "_attn_implementation", None),
            "cleaning": prepared.cleaning,
            "log_history": trainer.state.log_history,
        })
        runs.write_json(run_dir / runs.ENV, environment)
        console.print(results_table(baseline, final, title=f"{recipe.run_name}: {recipe.eval.split} split"))
        console.print(f"Run folder: {run_dir}")
    return run_dir


def _run_dir_and_checkpoint(recipe: Recipe, overwrite: bool, resume: Path | None) -> tuple[Path, Path | None]:
    if resume is None:
        return _create_run_dir(recipe, overwrite), None
    checkpoint, skipped = runs.last_complete_checkpoint(resume)
    for name in skipped:
        _say(f"[yellow]Skipping {name}: it was not completely written (no readable trainer_state.json)[/yellow]")
    _say(f"Resuming {resume} from {checkpoint.name}" if checkpoint else
         f"No complete checkpoint in {resume}: training it again from the start")
    return resume, checkpoint


def _baseline(trainer, prepared: Prepared, recipe: Recipe, run_dir: Path, resumed: bool) -> Scores | None:
    """The untuned model's scores; kept in metrics.json at once, so a resumed run reuses them."""
    if not recipe.eval.baseline:
        return None
    saved = runs.read_json(run_dir / runs.METRICS) if resumed and (run_dir / runs.METRICS).is_file() else {}
    if saved.get("baseline"):
        return Scores(metrics=saved["baseline"], details=saved.get("details", {}).get("baseline") or {})
    _say("Scoring the untuned model (eval.baseline: true)")
    baseline = score(trainer, prepared, recipe)
    _unmark_prepared_for_evaluation(trainer)
    if distributed.is_main():
        runs.write_json(run_dir / runs.METRICS, {**_describe(recipe, prepared), "status": "training",
                                                 "baseline": baseline.metrics, "final": None,
                                                 "details": {"baseline": baseline.details}})
    return baseline


class StopOnInterrupt(TrainerCallback):
    """The first Ctrl-C lets the current step finish, saves a checkpoint and stops training; a
    second one stops at once."""

    def __init__(self):
        self.requested = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True  # Trainer writes a complete checkpoint (model, optimizer, RNG, data position)
            control.should_training_stop = True

    @contextmanager
    def listening(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = signal.getsignal(signal.SIGINT)

        def handle(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            _say("[yellow]Interrupted: saving a checkpoint after this step (Ctrl-C again to quit at once)[/yellow]")

        signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _mark_interrupted(run_dir: Path, trainer) -> None:
    checkpoint, _ = runs.last_complete_checkpoint(run_dir)
    if distributed.is_main():
        saved = runs.read_json(run_dir / runs.METRICS) if (run_dir / runs.METRICS).is_file() else {}
        runs.write_json(run_dir / runs.METRICS, {**saved, "status": "interrupted",
                                                 "log_history": trainer.state.log_history})
    raise Interrupted(f"training stopped at step {trainer.state.global_step}; the checkpoint is "
                      f"{checkpoint}. Resume with: hfkit train --resume {run_dir}")


def _unmark_prepared_for_evaluation(trainer) -> None:
    """Let `train()` wrap the model for data-parallel training after an `evaluate()`.

    `Trainer.evaluate()` before `train()` prepares the model with accelerate in evaluation mode:
    no DistributedDataParallel wrapper, but the model is marked as prepared, so `train()` leaves it
    unwrapped and every process trains alone on its shard (transformers 5.24, accelerate 1.15;
    caught by the 2-process test). FSDP and DeepSpeed wrap in evaluation too and are left alone.
    """
    model = trainer.model
    if trainer.model_wrapped is model and getattr(model, "_is_accelerate_prepared", False):
        model._is_accelerate_prepared = False
        trainer.accelerator._models.remove(model)


def evaluate(target: str, overrides: list[str], overwrite: bool = False, command: list[str] | None = None) -> Path:
    """Score without training: a finished run (its adapter or model) or a recipe's model (zero-shot).

    A run is scored into `RUN/eval-<UTC time>/`; a recipe gets a new run folder whose
    metrics.json holds the scores as `baseline` (nothing was trained).
    """
    target_path = Path(target)
    recipe = load_recipe(target_path / runs.RECIPE if runs.is_run_dir(target_path) else target_path, overrides)
    task = tasks.for_recipe(recipe)
    args = training_arguments(recipe, task)
    if runs.is_run_dir(target_path):
        weights = next((target_path / d for d in (runs.ADAPTER, runs.MODEL) if (target_path / d).is_dir()), None)
        if weights is None:
            raise HfkitError(f"{target}: the run has no {runs.ADAPTER}/ or {runs.MODEL}/ folder (did training finish?)")
        out_dir = Path(distributed.broadcast(str(target_path / f"eval-{runs.utc_stamp()}")))
    else:
        weights = None
        out_dir = _create_run_dir(recipe, overwrite)
    args.output_dir = str(out_dir)

    base_path = _materialize(recipe)
    prepared = prepare(recipe, task, str(weights) if weights else base_path, with_train=False)
    if weights is not None and weights.name == runs.MODEL:
        model = models.load_model(str(weights), recipe.model, prepared.task.auto_model)
    else:
        dtype = lora.frozen_base_dtype(recipe.model, recipe.peft, task.peft_task_type) if weights else None
        model = models.load_base_model(recipe.model, task.auto_model, prepared.tokenizer, dtype=dtype)
        if weights is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(weights))
    trainer = make_trainer(args, prepared, model)
    is_main = trainer.is_world_process_zero()
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    partial = out_dir / runs.PARTIAL_PREDICTIONS if is_main else None
    scores = score(trainer, prepared, recipe, stream_to=partial)
    environment = _env(trainer, command)  # gathers every process's device
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
        runs.write_json(out_dir / runs.ENV, environment)
        console.print(results_table(scores if stage == "baseline" else None, scores if stage == "final" else None,
                                    title=f"{target}: {recipe.eval.split}"))
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
    with distributed.state().main_process_first():  # convert a GGUF once, not once per process
        return models.materialize(recipe.model)


def _create_run_dir(recipe: Recipe, overwrite: bool) -> Path:
    """The main process creates the run folder; every process learns its path."""
    path = None
    if distributed.is_main():
        path = str(runs.create_run_dir(recipe.output.dir, recipe.run_name, recipe.output.timestamp, overwrite))
    return Path(distributed.broadcast(path))


def _env(trainer, command: list[str] | None) -> dict[str, Any]:
    return runs.env_info(seed=trainer.args.seed, parallel=distributed.describe(trainer),
                         command=command if command is not None else sys.argv)


def _say(message) -> None:
    """Print on the main process only: the others run the same job and would repeat it."""
    if distributed.is_main():
        console.print(message)


def _cleaning_table(report: dict[str, Any]):
    from rich.table import Table

    table = Table(title="Data cleaning")
    for column in ("split", "step", "removed", "rows"):
        table.add_column(column, justify="left" if column in ("split", "step") else "right")
    for split, steps in report.items():
        for step in steps:
            table.add_row(split, step["step"], str(step.get("removed", "")), str(step["rows"]))
    return table
