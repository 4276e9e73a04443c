"""The Trainer as hfkit runs it: transformers' own Trainer (or Seq2SeqTrainer), plus callbacks.

- `StopOnInterrupt`: the first Ctrl-C finishes the step, saves a checkpoint and stops; a second quits.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

from transformers import TrainerCallback

from hfkit.console import say


def trainer_class(base: type) -> type:
    """The Trainer class for a task (Trainer or Seq2SeqTrainer)."""
    return base


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
