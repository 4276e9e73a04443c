"""The Trainer as hfkit runs it: transformers' own Trainer (or Seq2SeqTrainer) with one method changed.

- `evaluate()` scores with hfkit's Scorer: the recipe's metrics by generation (Trainer generates
  for no decoder-only model) and the token-weighted loss, logged into `log_history` as
  `eval_<metric>`. So `metric_for_best_model: sacrebleu`, `load_best_model_at_end` and
  `EarlyStoppingCallback` work untouched, for every task and both model families.
- `StopOnInterrupt`: the first Ctrl-C finishes the step, saves a checkpoint and stops; a second quits.
"""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

from transformers import TrainerCallback

from hfkit.console import say


class ScoringTrainer:
    """Mixed in before Trainer/Seq2SeqTrainer; `hfkit_scorer` is set by the job."""

    hfkit_scorer = None

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        if self.hfkit_scorer is None:
            return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        started = time.perf_counter()
        evaluation = self.hfkit_scorer.score(self.model, resamples=0).evaluation  # intervals: final scores only
        metrics = {f"{metric_key_prefix}_{key.removeprefix('eval_')}": value for key, value in evaluation.metrics.items()
                   if isinstance(value, (int, float)) and not isinstance(value, bool)}
        metrics[f"{metric_key_prefix}_examples"] = evaluation.examples
        metrics[f"{metric_key_prefix}_runtime"] = round(time.perf_counter() - started, 3)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def trainer_class(base: type) -> type:
    """Trainer or Seq2SeqTrainer, scoring its evaluations the hfkit way."""
    return type(f"Hfkit{base.__name__}", (ScoringTrainer, base), {})


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
            yield  # signal handlers can only be set from the main thread (a notebook's worker, say)
            return
        previous = signal.getsignal(signal.SIGINT)

        def handle(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            say("[yellow]Interrupted: saving a checkpoint after this step (Ctrl-C again to quit at once)[/yellow]",
                important=True)

        signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
