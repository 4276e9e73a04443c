"""Scoring a model on the eval split: token-weighted loss, batched generation (or spans), metrics.

One scorer serves the baseline, the final model and `hfkit eval`, so their numbers come from one
code path. Its numbers do not depend on how they were computed:
- the model computes in float32 while scoring (`eval.dtype: float32`, the default): batched,
  left-padded greedy decoding of a bf16 model changed 27 of 60 translation predictions between eval
  batch 30 and 1; in fp32 batched equals unbatched. The weights are cast back afterwards.
- eval_loss is the mean negative log-likelihood over every target token of the split (summed in
  float64 across batches and processes), not Trainer's mean of per-batch means, which moved with
  the eval batch size (2.35967 at 30, 2.36177 at 7). Extractive QA's loss is another quantity (the
  mean over windows of the start and end cross-entropies), so it is named `eval_span_loss`.
- every number carries the count it was computed on: `examples`, `loss_examples` and `loss_tokens`
  (`loss_windows` for spans); `count_warnings` says when one differs from the split's size.
Trainer does not generate for decoder-only models at eval time and hands `compute_metrics` logits,
so hfkit generates itself and scores text.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hfkit import distributed, metrics, runs
from hfkit.console import progress
from hfkit.formats import PredictionRow, write_predictions
from hfkit.generation import generate
from hfkit.metrics.builtin.perplexity import from_loss as perplexity
from hfkit.record import Evaluation
from hfkit.tasks import IGNORE, EvalExamples, Task


@dataclass
class EvalData:
    """The eval split in the three forms scoring needs."""

    rows: Any  # the split's examples (the task's fields)
    tokenized: Any  # model inputs with labels, for the loss (None: the task has none)
    examples: EvalExamples | None  # prompts and references for generation
    counts: dict[str, int] = field(default_factory=dict)
    loss_examples: int | None = None  # examples whose targets are in `tokenized` (None: no loss)


@dataclass
class Scores:
    evaluation: Evaluation
    predictions: list[PredictionRow]  # one row per eval example, in order

    def keep(self, folder: Path, name: str) -> None:
        """Write the predictions, in order, as `folder/name` (the one ending of every verb that scores);
        the file streamed while generating (runs.PARTIAL_PREDICTIONS) goes, and the evaluation names it."""
        self.evaluation.predictions_version = write_predictions(folder / name, self.predictions)
        (folder / runs.PARTIAL_PREDICTIONS).unlink(missing_ok=True)
        self.evaluation.predictions = name


class Scorer:
    def __init__(self, task: Task, tokenizer, data: EvalData, collator, batch_size: int, seed: int,
                 dtype: str = "float32", sharded: bool = False):
        self.task, self.tokenizer, self.data, self.collator = task, tokenizer, data, collator
        self.batch_size, self.seed, self.dtype, self.sharded = batch_size, seed, dtype, sharded

    def score(self, model, stream_to: Path | None = None, resamples: int | None = None) -> Scores:
        """Loss, answers and metrics of `model` on the eval split, the same on every process.

        Each prediction row carries its example's own scores; the headline scores get bootstrap
        intervals from `resamples` resamples (default: the recipe's eval.bootstrap; 0: none)."""
        with computing_in(model, None if self.sharded or self.dtype == "auto" else "float32") as (dtype, weights):
            extra: dict = {}
            if self.task.generates:
                loss_sum, tokens = self._loss(model) if self.data.tokenized is not None else (0.0, 0)
                answers = self._generate(model, stream_to) if self.data.examples is not None else None
            else:
                answers, extra, loss_sum, tokens = self._spans(model)
        evaluation = Evaluation(examples=len(self.data.rows), dtype=dtype, model_dtype=weights)
        if tokens and self.task.generates:
            loss = loss_sum / tokens
            evaluation.metrics["eval_loss"] = loss
            evaluation.metrics["perplexity"] = perplexity(loss)
            evaluation.loss_tokens, evaluation.loss_examples = tokens, self.data.loss_examples
        elif tokens:  # extractive spans: one loss per window, every example has at least one window
            evaluation.metrics["eval_span_loss"] = loss_sum / tokens
            evaluation.loss_windows, evaluation.loss_examples = tokens, len(self.data.rows)
        if answers is None:
            return Scores(evaluation, [])
        examples = self.data.examples
        names = self.task.metric_names()
        rows = [row(examples, i, answer) for i, answer in enumerate(answers)]
        if names and distributed.is_main():  # every process holds all answers; one scores them
            recipe = self.task.recipe
            predictions, references = self.task.metric_inputs(answers, examples, extra)
            results = metrics.score(names, predictions, references, recipe.eval.metric_args,  # one pass per metric
                                    recipe.eval.bootstrap if resamples is None else resamples)
            evaluation.metrics.update(results.scores)
            evaluation.details, evaluation.intervals = results.details, results.intervals
            for i, line in enumerate(rows):
                line.scores = {key: _finite(values[i]) for key, values in results.examples.items()}
                if isinstance(predictions[i], dict):  # SQuAD's {id, prediction_text, no_answer_probability}:
                    line.metric_prediction = predictions[i]  # what a paired test rescoring the row needs
        # Every process decides the same (best checkpoint, early stopping): they all get the main one's.
        evaluation.metrics, evaluation.details, evaluation.intervals = distributed.broadcast(
            (evaluation.metrics, evaluation.details, evaluation.intervals))
        return Scores(evaluation, rows)

    # Loss ---------------------------------------------------------------------------------------
    def _loss(self, model) -> tuple[float, int]:
        """Summed target-token NLL and the number of target tokens, over every process's share."""
        import torch

        dataset = self.data.tokenized
        mine = distributed.shard(list(range(len(dataset))))
        total, count = 0.0, 0
        with torch.inference_mode():
            for batch_ids in self._batches(mine, dataset):
                batch = self._collate(dataset, batch_ids, model)
                labels = batch.pop("labels")
                inputs = batch if "decoder_input_ids" in batch or not model.config.is_encoder_decoder else {
                    **batch, "labels": labels}
                logits = model(**inputs).logits.float()
                if not model.config.is_encoder_decoder:
                    logits, labels = logits[:, :-1], labels[:, 1:]  # position t predicts token t + 1
                losses = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                           ignore_index=IGNORE, reduction="none")
                total += float(losses.double().sum())
                count += int((labels != IGNORE).sum())
        return distributed.sum_over_processes(total), int(distributed.sum_over_processes(count))

    def _batches(self, indices: list[int], dataset) -> list[list[int]]:
        """Length-sorted batches of `batch_size` (little padding; in fp32 the result does not depend on it)."""
        lengths = [len(ids) for ids in dataset["input_ids"]]
        order = sorted(indices, key=lambda i: -lengths[i])
        return [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]

    def _collate(self, dataset, batch_ids: list[int], model) -> dict:
        batch = self.collator([dataset[i] for i in batch_ids])
        return {key: value.to(model.device) for key, value in batch.items() if hasattr(value, "to")}

    # Extractive spans -----------------------------------------------------------------------------
    def _spans(self, model) -> tuple[list[str], dict, float, int]:
        """Span logits of every window in dataset order, each window's loss, then the task's answers."""
        import numpy as np
        import torch

        from hfkit.tasks.qa_spans import window_losses

        features = self.data.tokenized
        mine = distributed.shard(list(range(len(features))))
        logits: list[tuple[int, list, list]] = []
        with torch.inference_mode():
            for batch_ids in self._batches(mine, features):
                batch = self._collate(features, batch_ids, model)
                batch.pop("start_positions", None)
                batch.pop("end_positions", None)
                output = model(**batch)
                for row, index in enumerate(batch_ids):
                    length = len(features[index]["input_ids"])  # padding is no part of a window
                    logits.append((index, output.start_logits[row, :length].float().tolist(),
                                   output.end_logits[row, :length].float().tolist()))
        ordered = sorted(distributed.gather(logits))
        starts = [np.asarray(s) for _, s, _ in ordered]
        ends = [np.asarray(e) for _, _, e in ordered]
        losses = [float(window_losses(s[None], e[None], [p], [q])[0]) for s, e, p, q in
                  zip(starts, ends, features["start_positions"], features["end_positions"])]
        answers, extra = self.task.answers(self.data.rows, features, starts, ends)
        return answers, extra, sum(losses), len(losses)

    # Generation -----------------------------------------------------------------------------------
    def _generate(self, model, stream_to: Path | None) -> list[str]:
        """Each process generates every n-th prompt; the answers are gathered back into input order."""
        examples = self.data.examples
        mine = distributed.shard(examples.prompts)
        started = time.perf_counter()
        with _stream(stream_to) as sink, progress(len(examples.prompts), "Generating") as advance:
            def on_batch(local: list[int], answers: list[str]) -> None:
                for i, answer in zip(local, answers):
                    sink({"index": mine[i], **row(examples, mine[i], answer).data()})
                advance(len(local) * distributed.world_size())

            answers = generate(model, self.tokenizer, [examples.prompts[i] for i in mine],
                               self.task.recipe.generation, self.batch_size, self.seed, on_batch=on_batch,
                               synced=self.sharded, token_ids=self.task.generation_settings(self.tokenizer))
        self.generation_seconds = time.perf_counter() - started  # a decoding sweep reports examples/s
        ordered: list[str] = [""] * len(examples.prompts)
        for index, answer in distributed.gather(list(zip(mine, answers))):
            ordered[index] = answer  # each index comes from exactly one process
        return ordered


def count_warnings(evaluation: Evaluation, split: str, size: int) -> list[str]:
    """A line for every count of `evaluation` that differs from the split's size: a number computed
    on fewer examples than the split holds must say so."""
    found = []
    for name, value in (("examples", evaluation.examples), ("loss_examples", evaluation.loss_examples)):
        if value is not None and value != size:
            found.append(f"the {split} split has {size} examples, but {name} is {value}: "
                         + ("eval_loss" if name == "loss_examples" else "the metrics") + f" cover {value} of {size}")
    return found


def _finite(value: float) -> float | None:
    """NaN (a squad_v2 subset an example is not in) as null: JSON has no NaN."""
    return None if value != value else value


def row(examples: EvalExamples, i: int, prediction: str) -> PredictionRow:
    return PredictionRow(id=examples.ids[i], input=examples.sources[i], reference=examples.references[i],
                         prediction=prediction)


@contextmanager
def computing_in(model, dtype: str | None):
    """Let `model` score in evaluation mode (no dropout) and compute in `dtype` (float32), then give
    every tensor its own dtype and the model its mode back.

    Casting bf16 weights to fp32 is exact, so fp32 scoring sees the very weights training uses. A
    4-bit (QLoRA) base keeps its NF4 weights and dequantises them to fp32 instead of bf16.
    Yields (the dtype the model computes in, the dtype most of its weights are stored in)."""
    import torch

    from hfkit.qlora import four_bit_layers

    own = {name: t.dtype for name, t in [*model.named_parameters(), *model.named_buffers()]}
    four_bit = {layer: layer.compute_dtype for layer in four_bit_layers(model)}
    was_training = model.training
    model.eval()
    cast = dtype is not None and (any(d != torch.float32 for d in own.values() if d.is_floating_point)
                                  or any(d != torch.float32 for d in four_bit.values()))
    weights = "nf4" if four_bit else weights_dtype(model)  # a QLoRA base: its linear layers are 4-bit
    if cast:
        model.to(torch.float32)
        for layer in four_bit:
            layer.compute_dtype = torch.float32
    try:
        yield ("float32" if cast else str(next(iter(own.values()), torch.float32)).removeprefix("torch."), weights)
    finally:
        model.train(was_training)
        for layer, compute_dtype in four_bit.items():
            layer.compute_dtype = compute_dtype
        if cast:
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                if tensor.dtype != own[name]:
                    tensor.data = tensor.data.to(own[name])


def weights_dtype(model) -> str:
    """The dtype that holds most of the model's floating-point weights (a LoRA model: its base's)."""
    sizes: dict[str, int] = {}
    for tensor in model.parameters():
        if tensor.is_floating_point():
            key = str(tensor.dtype).removeprefix("torch.")
            sizes[key] = sizes.get(key, 0) + tensor.numel()
    return max(sizes, key=sizes.get) if sizes else "float32"


@contextmanager
def _stream(path: Path | None):
    """Yield a function that appends a JSON line to `path` (or does nothing without one)."""
    if path is None:
        yield lambda line: None
        return
    with path.open("w", encoding="utf-8") as f:
        def write(line: dict) -> None:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()

        yield write
