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

from hfkit import data, decoding_budget, distributed, lora, metrics, models, qlora, tasks
from hfkit.console import level
from hfkit.errors import HfkitError, first_line
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
    # What evaluations while training score (best model, early stopping): the selection split (never
    # test), its first eval.during_training_samples examples. None when training never evaluates.
    periodic: EvalData | None = None
    notes: list[str] = field(default_factory=list)  # warnings from preparation, kept in the run record


def bind(recipe: Recipe, encoder_decoder: bool | None = None) -> Task:
    task = tasks.bind(recipe, encoder_decoder)
    if recipe.peft.method == "qlora":
        qlora.check(recipe.model, task.new_heads, bool(recipe.model.encoder_decoder))
    if recipe.data.packing in ("padding_free", "bfd") and not task.packs:
        what = "an encoder-decoder model" if task.encoder_decoder else f"task {task.name} ({task.fmt})"
        raise HfkitError(f"data.packing: {recipe.data.packing} packs decoder-only prompt/target examples, not "
                         f"{what}; set data.packing: none")
    return task


def train_collator(task: Task, tokenizer, model):
    """The training batches: packed as `data.packing` says (hfkit.tasks.packing); evaluation never packs.
    Padding-free rows carry their examples' boundaries to an attention that takes them
    (hfkit.varlen_attention: a model on sdpa switches to it)."""
    if not task.packs:
        return task.collator(tokenizer, model)
    from hfkit import varlen_attention
    from hfkit.tasks.packing import resolve

    varlen = varlen_attention.available(model)
    mode = resolve(task.recipe.data.packing, varlen)
    boundaries = mode == "padding_free" and varlen
    if boundaries:
        varlen_attention.enable(model)
    return task.collator(tokenizer, model, mode, boundaries)


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
    if task.loss_key != "eval_loss" and (best == "loss" or (best is None and kwargs.get("load_best_model_at_end"))):
        best = kwargs["metric_for_best_model"] = task.loss_key  # Trainer's default "loss" has another name here
    if best and "greater_is_better" not in kwargs:
        kwargs["greater_is_better"] = not metrics.lower_is_better(best, task.metric_names())  # TER, perplexity: lower
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


def check_model(recipe: Recipe, task: Task, strategies: list | None = None):
    """Lengths fit the model, and generation (the recipe's, or each of `strategies`: (where set,
    GenerationSection)) leaves room for a prompt and fits in memory. The config is read, not the
    weights; it is returned."""
    config = models.load_config(recipe.model)
    models.check_lengths(task.lengths(), config)
    prompt_tokens = task.generation_tokens(config) if task.generates else None
    if prompt_tokens is not None:
        decoding_budget.check(strategies or [("generation", recipe.generation)], config,
                              batch_size=eval_batch_size(recipe), prompt_tokens=prompt_tokens,
                              encoder_decoder=task.encoder_decoder)
    return config


def check_hub_needs(recipe: Recipe, task: Task, training: bool) -> None:
    """With HF_HUB_OFFLINE=1, refuse up front what would need the Hub later: a Hub metric (it would
    fail at scoring, after training) and, when training, `hub.push` (at the very end)."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE:
        return
    for name in task.metric_names():
        if "/" in name:
            raise HfkitError(f"eval.metrics: {name!r} is a Hub metric, but HF_HUB_OFFLINE=1: it could not load, and "
                             f"scoring would fail{' after training' if training else ''}; use hfkit's own "
                             f"({', '.join(metrics.names())}), or unset HF_HUB_OFFLINE")
    if training and recipe.hub.push:
        raise HfkitError("hub.push: true needs the Hub at the end of training, but HF_HUB_OFFLINE=1; set "
                         "hub.push: false and run hfkit push RUN later, or unset HF_HUB_OFFLINE")


def eval_batch_size(recipe: Recipe) -> int:
    """Prompts per generation batch (TrainingArguments' default, 8, unless the recipe sets it)."""
    size = recipe.training.get("per_device_eval_batch_size", 8)
    return size if isinstance(size, int) and size > 0 else 8


def load_tokenizer(task: Task, path: str):
    tokenizer = models.load_tokenizer(path, task.recipe.model)
    task.setup_tokenizer(tokenizer)
    return tokenizer


def load_data(recipe: Recipe, task: Task, training: bool = True):
    """The recipe's splits in the task's fields (training data cleaned), and the cleaning counts.
    The task then checks what the data means for the recipe (`Task.check_data`: e.g. SQuAD v2 data
    and its metric); its notes land in `task.data_notes`.

    With `data.streaming` only the evaluation splits: the training rows are read while training."""
    if recipe.data.streaming:
        from hfkit import streaming

        splits, cleaning = streaming.eval_splits(recipe, task)
        check_splits(recipe, splits, training=False)
    else:
        splits, cleaning = data.load_splits(recipe.data, task.fields(), task.text_fields(),
                                            seed=recipe.training.get("seed", 42), convert=task.convert,
                                            optional=task.optional_fields(), normalize_fields=task.normalize_fields(),
                                            training=training)
        check_splits(recipe, splits, training)
    task.data_notes += task.check_data(splits, recipe.data)
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
    selection = selection_split(recipe) if with_train else None
    with distributed.state().main_process_first():  # build the datasets caches once; other ranks reuse them
        splits, cleaning = load_data(recipe, task, training=with_train)
        rows = splits[recipe.eval.split]
        train = _train_data(recipe, task, tokenizer, splits) if with_train else None
        if train is not None and recipe.data.streaming:
            cleaning["train"] = train.dataset.cleaning  # filled in as the stream is read
        eval_data = eval_data_of(task, tokenizer, rows, recipe.eval.split)
    preparation = {recipe.eval.split: eval_data.counts}
    if train is not None:
        preparation = {"train": train.counts, **preparation}
    notes = [*task.data_notes, *data_notes(recipe, task, train)]
    periodic = None
    if selection is not None:
        if selection not in splits:
            raise HfkitError("eval.split: test is scored once, at the end; evaluations while training (best model, "
                             "early stopping: training.eval_strategy, metric_for_best_model) choose on the validation "
                             "split, and there is none; set data.validation_file (or data.validation_split)")
        chosen = splits[selection]
        cap = recipe.eval.during_training_samples
        if selection == recipe.eval.split and (cap is None or cap >= len(chosen)):
            periodic = eval_data
        else:
            with distributed.state().main_process_first():
                periodic = eval_data_of(task, tokenizer, chosen.select(range(min(cap or len(chosen), len(chosen)))),
                                        selection)
            if selection != recipe.eval.split:
                preparation[selection] = periodic.counts
                notes.append(f"evaluations while training score the {selection} split ({len(periodic.rows)} "
                             f"examples); the {recipe.eval.split} split is scored once, at the end")
    return Prepared(task, tokenizer, splits, train, eval_data, {"cleaning": cleaning, "preparation": preparation},
                    periodic, notes)


def eval_data_of(task: Task, tokenizer, rows, split: str) -> EvalData:
    """An evaluation split as scoring needs it; every example is in the loss (hfkit.tasks.decoder)."""
    tokenized = task.tokenize(rows, tokenizer, split)
    examples = task.eval_examples(rows, tokenizer)
    has_loss = len(tokenized.dataset) > 0
    return EvalData(rows=rows, tokenized=tokenized.dataset if has_loss else None, examples=examples,
                    counts={**tokenized.counts, **_prefixed("generation", examples)},
                    loss_examples=task.loss_examples(tokenized) if has_loss else None)


def evaluates_while_training(training: dict) -> bool:
    """Does the recipe's `training` section evaluate during training (periodically, to keep the best
    model or to stop early)?"""
    strategy = str(training.get("eval_strategy") or "no").lower().rsplit(".", 1)[-1]
    return strategy != "no" or any(training.get(key) for key in (
        "metric_for_best_model", "load_best_model_at_end", "early_stopping_patience", "eval_on_start"))


def selection_split(recipe: Recipe) -> str | None:
    """The split evaluations while training score: the eval split, or validation when that is test
    (so the checkpoint is never chosen on the test set); None when training does not evaluate."""
    if not evaluates_while_training(recipe.training):
        return None
    return "validation" if recipe.eval.split == "test" else recipe.eval.split


def data_notes(recipe: Recipe, task: Task, train: Tokenized | None) -> list[str]:
    """Warnings about the data worth printing and keeping: a training split that lost more than 10%
    of its examples to the length limit, and evaluation data that an override did not change."""
    notes = []
    counts = train.counts if train is not None else {}
    dropped, total = counts.get("target_too_long", 0), counts.get("examples", 0)
    if train is not None and train.keeps_95 is not None:
        key = "data.max_target_length" if task.encoder_decoder else "data.max_length"
        limit = recipe.data.max_target_length if task.encoder_decoder else recipe.data.max_length
        fits = f"in {limit} tokens" if limit else "in the limit"
        notes.append(f"{key}: {dropped} of {total} training examples ({100 * dropped / total:.0f}%) were dropped: "
                     f"their target {'does not fit' if task.encoder_decoder else 'leaves no room for a prompt'} "
                     f"{fits}; {key}={train.keeps_95} would keep 95% of them")
    split = recipe.eval.split
    if "data.train_file" in recipe._overridden and f"data.{split}_file" not in recipe._overridden:
        notes.append(f"data.train_file was set on the command line, data.{split}_file was not: the {split} split is "
                     f"{describe_eval_data(recipe)}, from the recipe file {recipe.path}; set data.{split}_file=... to "
                     "score on other data")
    return notes


def describe_eval_data(recipe: Recipe) -> str:
    """Which data the eval split holds: its file, its Hub split, or what it was held out from."""
    data, split = recipe.data, recipe.eval.split
    if data.dataset:
        return f"{data.dataset} ({getattr(data, f'{split}_split')} split)"
    path = getattr(data, f"{split}_file")
    if path:
        return Path(path).name
    source = Path(data.train_file).name if data.train_file else "the training data"
    if data.streaming:
        return f"the first {data.max_eval_samples} rows of {source}"
    return f"{data.validation_fraction:.0%} held out from {source}"


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


def load_model(recipe: Recipe, task: Task, tokenizer, weights: Path | None = None, train: bool = True,
               checkpoint_dtype: bool = False):
    """The base model (with LoRA when `train`ing), or a run's weights: its `model/` folder, or the
    base with its `adapter/`.

    Under LoRA the frozen base trains in bf16 where that is native, and a run's adapter is scored on
    that same bf16 base. The untuned model is scored on the checkpoint's own weights whatever the
    hardware: `hfkit eval RECIPE` loads them as they are, and `hfkit train` with a baseline loads
    them too (`checkpoint_dtype`), scores, then casts the frozen base (`lora.settle_frozen_base`).
    """
    if weights is not None and weights.name == "model":
        return models.load_model(str(weights), recipe.model, task.auto_model)
    bf16_base = weights is not None or (train and not checkpoint_dtype)
    if recipe.peft.method == "qlora":  # the base in 4-bit NF4
        model = qlora.load_base(recipe.model, task.auto_model, tokenizer)
    else:
        dtype = lora.frozen_base_dtype(recipe.model, recipe.peft, task.new_heads) if bf16_base else None
        model = models.load_base_model(recipe.model, task.auto_model, tokenizer, dtype=dtype)
    if weights is not None:
        from peft import PeftModel

        try:
            return PeftModel.from_pretrained(model, str(weights))
        except (ValueError, RuntimeError, KeyError) as err:  # no matching layers, tensors of other shapes
            raise HfkitError(f"model.name_or_path: the adapter in {weights} does not fit {recipe.model.display_name} "
                             f"({type(err).__name__}: {first_line(err)[:160]}); it was trained on "
                             f"{_adapter_base(weights)}: score it on that model (drop the model override)") from None
    if not (recipe.peft.adapter and train):
        return model
    return lora.add_lora(model, recipe.peft, task.peft_task_type, task.new_heads)


def _adapter_base(adapter: Path) -> str:
    """The base model an adapter was trained on, as peft wrote it into adapter_config.json."""
    import json

    try:
        return json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the model in the run's recipe.yaml"


def make_trainer(args, prepared: Prepared, model):
    """The task's Trainer class, whose evaluations during training score like the final one."""
    from transformers import EarlyStoppingCallback

    from hfkit.trainer import ShareSavedFiles, trainer_class

    recipe = prepared.task.recipe
    _, stopping = split_callback_keys(recipe.training)
    trainer = trainer_class(prepared.task.trainer_class())(
        model=model,
        args=args,
        train_dataset=prepared.train.dataset if prepared.train else None,
        # evaluate() scores prepared.periodic (the selection split, never test) through hfkit_scorer
        eval_dataset=(prepared.periodic or prepared.eval).rows,
        data_collator=train_collator(prepared.task, prepared.tokenizer, model),
        processing_class=prepared.tokenizer,
        callbacks=[EarlyStoppingCallback(stopping["early_stopping_patience"], stopping.get("early_stopping_threshold", 0.0))]
        if stopping else None,
    )
    trainer.hfkit_scorer = make_scorer(recipe, prepared, trainer, prepared.periodic or prepared.eval)
    trainer.add_callback(ShareSavedFiles())
    if level() == "quiet":  # Trainer prints every log as a raw dict when its progress bar is off
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
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
        "model_family": models.model_family(recipe.model, task.encoder_decoder),
        "dataset": recipe.data.dataset or Path(recipe.data.first_file).name,
        "eval_data": describe_eval_data(recipe),
        "eval_split": recipe.eval.split,
        "selection_split": selection_split(recipe) if prepared.train is not None else None,
        "eval_examples": len(prepared.eval.rows),
        "metric_names": task.metric_names(),
        "data": prepared.report,
    }
