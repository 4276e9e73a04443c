"""The parts of a job, shared by train, eval, validate and the benchmarks.

A job runs in named phases (as torchtune's recipes do): the task is bound to the recipe, then
`prepare` loads the tokenizer and data and tokenizes them, `load_model` brings the base (or a run's)
weights with LoRA, `make_trainer` builds the Trainer, and a `Scorer` scores. hfkit.training strings
them together for `hfkit train` and `hfkit eval`; each phase takes only what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit import data, distributed, lora, metrics, models, tasks
from hfkit.console import level
from hfkit.errors import HfkitError
from hfkit.redaction import redact_value
from hfkit.scoring import EvalData, Scorer
from hfkit.schema import Recipe
from hfkit.tasks import Task, Tokenized
from hfkit.training_keys import split_callback_keys


@dataclass
class Prepared:
    """Everything a Trainer needs besides the model: tokenizer, splits, tokenized data, counts."""

    task: Task
    tokenizer: Any
    splits: Any  # DatasetDict of the task's fields (train cleaned, eval as the files hold it)
    train: Tokenized | None  # None when only evaluating
    eval: EvalData
    report: dict[str, Any] = field(default_factory=dict)  # {"cleaning": ..., "preparation": ...}
    periodic: EvalData | None = None  # the first eval.during_training_samples examples, scored while training


def bind(recipe: Recipe, encoder_decoder: bool | None = None) -> Task:
    task = tasks.bind(recipe, encoder_decoder)
    if recipe.data.packing in ("padding_free", "bfd") and not task.packs:
        what = "an encoder-decoder model" if task.encoder_decoder else f"task {task.name} ({task.fmt})"
        raise HfkitError(f"data.packing: {recipe.data.packing} packs decoder-only prompt/target examples, not "
                         f"{what}; set data.packing: none")
    return task


def train_collator(task: Task, tokenizer, model):
    """The training batches: packed as `data.packing` says (hfkit.tasks.packing); evaluation never packs."""
    if not task.packs:
        return task.collator(tokenizer, model)
    from hfkit.tasks.packing import resolve

    varlen = str(getattr(model.config, "_attn_implementation", "")).startswith("flash_attention")
    return task.collator(tokenizer, model, resolve(task.recipe.data.packing, varlen))


def training_arguments(recipe: Recipe, task: Task, output_dir: Path | None = None):
    """`TrainingArguments` straight from the recipe's `training` section.

    hfkit sets output_dir (the run folder) and, unless the recipe sets them, two defaults:
    `train_sampling_strategy: group_by_length` for tasks whose examples vary in length (not packed
    text, not extractive QA's windows), and `use_cpu` when several processes are launched on a
    machine without an accelerator, because only then does accelerate join them over gloo.
    Building it also sets up the (distributed) state every later step relies on. Token-shaped
    values are masked: Trainer pickles these arguments into the run folder (training_args.bin).
    """
    kwargs, stopping = split_callback_keys(redact_value(dict(recipe.training)))
    if stopping:  # a resumed run continues early stopping's patience count, not a fresh one
        kwargs.setdefault("restore_callback_states_from_checkpoint", True)
    best = kwargs.get("metric_for_best_model")
    if best and "greater_is_better" not in kwargs:
        kwargs["greater_is_better"] = not metrics.lower_is_better(best)  # TER, perplexity: lower is better
    if level() == "quiet" and "disable_tqdm" not in kwargs:
        kwargs["disable_tqdm"] = True
    distributed.check_engine_on_cpu()
    if "use_cpu" not in kwargs and distributed.launched_without_accelerator():
        kwargs["use_cpu"] = True
    if "train_sampling_strategy" not in kwargs and task.group_by_length:
        kwargs["train_sampling_strategy"] = "group_by_length"  # batches of similar lengths: less padding
    try:
        args = task.training_args_class()(output_dir=str(output_dir) if output_dir else None, **kwargs)
    except (TypeError, ValueError) as err:
        raise HfkitError(f"training: {err}") from None
    args.world_size  # noqa: B018 - sets up the process group now, before any process-dependent step
    return args


def materialize(recipe: Recipe) -> str:
    """A loadable path for the recipe's model; a GGUF is converted once, not once per process."""
    with distributed.state().main_process_first():
        return models.materialize(recipe.model)


def check_model(recipe: Recipe, task: Task) -> None:
    """Lengths fit the model (the config is read, not the weights)."""
    models.check_lengths(task.lengths(), models.load_config(recipe.model))


def load_tokenizer(task: Task, path: str):
    tokenizer = models.load_tokenizer(path, task.recipe.model)
    task.setup_tokenizer(tokenizer)
    return tokenizer


def load_data(recipe: Recipe, task: Task, training: bool = True):
    """The recipe's splits in the task's fields (training data cleaned), and the cleaning counts.

    With `data.streaming` only the evaluation splits: the training rows are read while training."""
    if recipe.data.streaming:
        from hfkit import streaming

        splits, cleaning = streaming.eval_splits(recipe, task)
        check_splits(recipe, splits, training=False)
        return splits, cleaning
    splits, cleaning = data.load_splits(recipe.data, task.fields(), task.text_fields(),
                                        seed=recipe.training.get("seed", 42), convert=task.convert,
                                        optional=task.optional_fields(), normalize_fields=task.normalize_fields(),
                                        training=training)
    check_splits(recipe, splits, training)
    return splits, cleaning


def check_splits(recipe: Recipe, splits, training: bool) -> None:
    """The eval split must exist, and a training job needs a train split."""
    split = recipe.eval.split
    if split not in splits:
        raise HfkitError(f"eval.split: there is no {split} split; set data.{split}_file "
                         f"(or data.{split}_split for a Hub dataset)")
    if training and "train" not in splits:
        raise HfkitError("data: training needs a train split; set data.train_file or data.dataset")


def prepare(recipe: Recipe, task: Task, tokenizer_path: str, with_train: bool) -> Prepared:
    """Load the tokenizer and data, clean the training data and tokenize what the job needs."""
    tokenizer = load_tokenizer(task, tokenizer_path)
    with distributed.state().main_process_first():  # build the datasets caches once; other ranks reuse them
        splits, cleaning = load_data(recipe, task, training=with_train)
        rows = splits[recipe.eval.split]
        train = _train_data(recipe, task, tokenizer, splits) if with_train else None
        if train is not None and recipe.data.streaming:
            cleaning["train"] = train.dataset.cleaning  # filled in as the stream is read
        tokenized_eval = task.tokenize(rows, tokenizer, recipe.eval.split)
        examples = task.eval_examples(rows, tokenizer)
    preparation = {recipe.eval.split: {**tokenized_eval.counts, **_prefixed("generation", examples)}}
    if train is not None:
        preparation = {"train": train.counts, **preparation}
    if not len(tokenized_eval.dataset):
        from hfkit.console import say

        say(f"[yellow]No {recipe.eval.split} example fits data.max_length with its whole target: "
            "eval_loss is not computed (raise data.max_length)[/yellow]")
    eval_data = EvalData(rows=rows, tokenized=tokenized_eval.dataset if len(tokenized_eval.dataset) else None,
                         examples=examples, counts=preparation[recipe.eval.split])
    periodic = None
    cap = recipe.eval.during_training_samples
    if with_train and cap is not None and cap < len(rows):
        with distributed.state().main_process_first():
            periodic = eval_data_of(task, tokenizer, rows.select(range(cap)), recipe.eval.split)
    return Prepared(task, tokenizer, splits, train, eval_data, {"cleaning": cleaning, "preparation": preparation},
                    periodic)


def eval_data_of(task: Task, tokenizer, rows, split: str) -> EvalData:
    tokenized = task.tokenize(rows, tokenizer, split)
    return EvalData(rows=rows, tokenized=tokenized.dataset if len(tokenized.dataset) else None,
                    examples=task.eval_examples(rows, tokenizer), counts=tokenized.counts)


def _train_data(recipe: Recipe, task: Task, tokenizer, splits) -> Tokenized:
    if not recipe.data.streaming:
        return task.tokenize(splits["train"], tokenizer, "train")
    from hfkit import streaming

    current = distributed.state()
    stream = streaming.train_stream(recipe, task, tokenizer, list(splits.values()), current.process_index,
                                    current.num_processes)
    return Tokenized(stream, stream.counts)


def train_examples(prepared: Prepared) -> int | None:
    """Training examples (a stream's: those read so far by this process)."""
    dataset = prepared.train.dataset
    return len(dataset) if hasattr(dataset, "__len__") else prepared.train.counts.get("examples")


def _prefixed(prefix: str, examples) -> dict[str, int]:
    return {f"{prefix}_{key}": value for key, value in (examples.counts if examples else {}).items()}


def load_model(recipe: Recipe, task: Task, tokenizer, weights: Path | None = None, train: bool = True):
    """The base model (with LoRA when `train`ing), or a run's weights: its `model/` folder, or the
    base with its `adapter/`.

    Under LoRA the frozen base loads in bf16 where that is native, whether training, evaluating a
    run's adapter or scoring the recipe's base zero-shot, so a baseline scored inside `hfkit train`
    and one scored by `hfkit eval RECIPE` see the very same weights.
    """
    if weights is not None and weights.name == "model":
        return models.load_model(str(weights), recipe.model, task.auto_model)
    uses_lora = recipe.peft.method == "lora"
    dtype = lora.frozen_base_dtype(recipe.model, recipe.peft, task.new_heads) if uses_lora else None
    model = models.load_base_model(recipe.model, task.auto_model, tokenizer, dtype=dtype)
    if weights is not None:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, str(weights))
    return lora.add_lora(model, recipe.peft, task.peft_task_type, task.new_heads) if uses_lora and train else model


def make_trainer(args, prepared: Prepared, model):
    """The task's Trainer class, whose evaluations during training score like the final one."""
    from transformers import EarlyStoppingCallback

    from hfkit.trainer import trainer_class

    recipe = prepared.task.recipe
    _, stopping = split_callback_keys(recipe.training)
    trainer = trainer_class(prepared.task.trainer_class())(
        model=model,
        args=args,
        train_dataset=prepared.train.dataset if prepared.train else None,
        eval_dataset=prepared.eval.rows,  # evaluate() scores prepared.periodic through hfkit_scorer
        data_collator=train_collator(prepared.task, prepared.tokenizer, model),
        processing_class=prepared.tokenizer,
        callbacks=[EarlyStoppingCallback(stopping["early_stopping_patience"], stopping.get("early_stopping_threshold", 0.0))]
        if stopping else None,
    )
    trainer.hfkit_scorer = make_scorer(recipe, prepared, trainer, prepared.periodic or prepared.eval)
    return trainer


def make_scorer(recipe: Recipe, prepared: Prepared, trainer, data: EvalData | None = None) -> Scorer:
    return Scorer(prepared.task, prepared.tokenizer, data or prepared.eval,
                  prepared.task.collator(prepared.tokenizer, trainer.model),
                  batch_size=trainer.args.per_device_eval_batch_size, seed=trainer.args.seed,
                  dtype=recipe.eval.dtype, sharded=distributed.shards_parameters(trainer))


def describe(recipe: Recipe, prepared: Prepared) -> dict[str, Any]:
    """What the run record says about the job, whatever its phase."""
    task = prepared.task
    return {
        "task": recipe.task,
        "format": task.fmt,
        "model": recipe.model.display_name,
        "model_family": "encoder-decoder" if task.encoder_decoder else "decoder-only",
        "dataset": recipe.data.dataset or Path(recipe.data.first_file).name,
        "eval_split": recipe.eval.split,
        "eval_examples": len(prepared.eval.rows),
        "metric_names": task.metric_names(),
        "data": prepared.report,
    }
