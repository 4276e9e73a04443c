"""The Trainer as hfkit runs it: transformers' own Trainer (or Seq2SeqTrainer), plus small mixins.

- `ScoringTrainer`: `evaluate()` scores with hfkit's Scorer: the recipe's metrics by generation
  (Trainer generates for no decoder-only model) and the token-weighted loss, logged into
  `log_history` as `eval_<metric>`. So `metric_for_best_model: sacrebleu`, `load_best_model_at_end`
  and `EarlyStoppingCallback` work untouched, for every task and both model families.
- `TargetOnlyLoss`: the LM head and the loss run only where a next-token label is set.
- `LengthColumnSampler`: length-grouped batches read the tokenized `length` column.
- `PreSplitStream`: a training stream hfkit split by process is batched as it is.
- `ShareSavedFiles`: checkpoints get the usual file mode (0644), not safetensors' 0600.
- `StopOnInterrupt`: the first Ctrl-C or SIGTERM finishes the step, saves a checkpoint and stops; a
  second quits.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from transformers import TrainerCallback

from hfkit.console import say
from hfkit.errors import Terminated


class ScoringTrainer:
    """Mixed in before Trainer/Seq2SeqTrainer; `hfkit_scorer` is set by the job."""

    hfkit_scorer = None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.hfkit_scorer is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        started = time.perf_counter()
        evaluation = self.hfkit_scorer.score(self.model, resamples=0).evaluation  # intervals: final scores only
        metrics = {f"{metric_key_prefix}_{key.removeprefix('eval_')}": logged(value) for key, value in evaluation.metrics.items()
                   if logged(value) is not None}
        metrics[f"{metric_key_prefix}_examples"] = evaluation.examples
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - started, 3)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def logged(value):
    """A score as Trainer logs and compares it: a number; a perplexity above its cap (">5.18e+21")
    as infinity, so best-model selection and early stopping still rank it (worst); None otherwise."""
    if isinstance(value, str) and value.startswith(">"):
        return float("inf")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def trainer_class(base: type) -> type:
    """The Trainer class for a task (Trainer or Seq2SeqTrainer) with hfkit's mixins."""
    return type(base.__name__, (ScoringTrainer, TargetOnlyLoss, LengthColumnSampler, PreSplitStream, base), {})


class TargetOnlyLoss:
    """Trainer mixin: a causal LM's head and loss run only at positions whose next token has a label.

    The model's own forward makes logits for every position, [batch, length, vocab] (49,152 for
    SmolLM2), then an fp32 copy and their gradient, though prompt and padding positions carry no
    loss. transformers 5 causal LMs take `logits_to_keep` as a boolean [batch, length] mask and
    `shift_labels` for the loss, so the head projects target positions only and ForCausalLMLoss
    normalises as before: by `num_items_in_batch` under gradient accumulation, else the mean over
    target tokens. One LoRA step on SmolLM2, batch 8 x 371-512 tokens: peak RSS 13.4 -> 11.2 GB
    (9.7 -> 7.6 GB with peft.dropout 0; README, Memory). The loss itself makes its gradient in its
    forward pass, a few rows at a time (hfkit/fused_loss.py), where the model's loss is the default.
    Anything else (encoder-decoder, label smoothing, a custom loss, outputs wanted) goes as before.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not return_outputs and "labels" in inputs and "logits_to_keep" not in inputs and self._selects_logits():
            inputs = target_positions(inputs)
        return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)

    def _selects_logits(self) -> bool:
        if not hasattr(self, "_target_only"):
            self._target_only = (self.label_smoother is None and self.compute_loss_func is None
                                 and self.model_accepts_loss_kwargs and selects_logits_by_mask(self.model))
            if self._target_only:
                from hfkit import fused_loss
                from hfkit.models import unwrapped

                fused_loss.install(unwrapped(self.model))
        return self._target_only


def target_positions(inputs: dict) -> dict:
    """Inputs whose logits are kept only where the shifted label is set, with those labels for the loss."""
    import torch.nn.functional as F

    from hfkit.tasks import IGNORE

    shifted = F.pad(inputs["labels"], (0, 1), value=IGNORE)[..., 1:]  # position t predicts token t + 1
    keep = shifted != IGNORE
    targets = shifted[keep]
    return {**inputs, "labels": targets, "shift_labels": targets, "logits_to_keep": keep}


def selects_logits_by_mask(model) -> bool:
    """Does this decoder-only model slice its hidden states with transformers' `slice_logits_to_keep`
    (which takes a boolean mask) before its head?"""
    import inspect
    import sys

    from hfkit.models import unwrapped

    base = unwrapped(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    module = sys.modules.get(type(base).__module__)
    return ("logits_to_keep" in inspect.signature(base.forward).parameters
            and getattr(module, "slice_logits_to_keep", None) is not None)


class LengthColumnSampler:
    """Trainer mixin: length-grouped batches take their lengths from the tokenized `length` column.

    Trainer drops the columns the model does not take (`length` among them) before it builds the
    sampler, which then reads every example's input_ids (1.06 s for 50,000 rows, every epoch);
    given the column it would get a lazy `datasets` Column, slower still (4.6 s). The column read
    as one arrow array takes 5 ms.
    """

    def _get_train_sampler(self, train_dataset=None):
        full = self.train_dataset
        column = self.args.length_column_name
        if self.args.train_sampling_strategy != "group_by_length" or column not in getattr(full, "column_names", ()):
            return super()._get_train_sampler(train_dataset)
        from transformers.trainer_pt_utils import LengthGroupedSampler

        lengths = full.with_format("arrow")[column].to_pylist()  # row order as the dataloader sees it
        return LengthGroupedSampler(self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=lengths)


class PreSplitStream:
    """Trainer mixin: a training stream already split by process (hfkit.streaming) is batched as it is.

    accelerate would split it again (every process keeping a slice of each batch), or by default
    read it on the main process and send slices of its batches, which fails for batches padded to
    different lengths. So the loader is prepared as for one process: batches moved to the device,
    and accelerate's skip_first_batches still replays a resumed stream.
    """

    def get_train_dataloader(self):
        if not getattr(self.train_dataset, "split_by_process", False):
            return super().get_train_dataloader()
        from accelerate.data_loader import prepare_data_loader
        from torch.utils.data import DataLoader

        loader = DataLoader(self.train_dataset, batch_size=self._train_batch_size, collate_fn=self.data_collator,
                            pin_memory=self.args.dataloader_pin_memory)
        return prepare_data_loader(loader, self.args.device, num_processes=1, process_index=0, put_on_device=True,
                                   dispatch_batches=False)


class ShareSavedFiles(TrainerCallback):
    """Checkpoints get the run folder's usual file mode: safetensors wrote their weights 0600 while
    every other file was 0644."""

    def on_save(self, args, state, control, **kwargs):
        from pathlib import Path

        from hfkit import runs

        checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if state.is_world_process_zero and checkpoint.is_dir():
            runs.share_files(checkpoint)


class StopOnInterrupt(TrainerCallback):
    """The first Ctrl-C (SIGINT) or SIGTERM (Slurm, Kubernetes and `timeout` send it before killing)
    lets the current step finish, saves a checkpoint and stops training; a second one stops at once.
    `signal_name` says which came, for the record and the exit code (130 or 143)."""

    SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

    def __init__(self):
        self.requested = False
        self.signal_name = "Ctrl-C"

    @property
    def exit_code(self) -> int:
        return 143 if self.signal_name == "SIGTERM" else 130

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True  # Trainer writes a complete checkpoint (model, optimizer, RNG, data position)
            control.should_training_stop = True

    @contextmanager
    def listening(self):
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread (a notebook's worker, say)
            return
        previous = {number: signal.getsignal(number) for number in self.SIGNALS}

        def handle(signum, frame):
            if self.requested:
                raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
            self.requested, self.signal_name = True, self.SIGNALS[signum]
            say(f"[yellow]{self.signal_name}: saving a checkpoint after this step ({self.signal_name} again to quit "
                "at once)[/yellow]", important=True)

        for number in self.SIGNALS:
            signal.signal(number, handle)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python
