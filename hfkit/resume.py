"""What a resumed run carries over from before its interruption, so its record covers the whole run.

Trainer's numbers after `resume_from_checkpoint` cover only the steps of that call: its runtime,
samples/s and train loss start again from zero. `TrainingClock` keeps the training time and the
summed logged loss in every checkpoint (trainer_state.json, as Trainer keeps its callbacks'
states), and `cover_whole_run` adds them back. env.json keeps the command that started the run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from hfkit import runs


class TrainingClock(TrainerCallback, ExportableState):
    """Training seconds and the loss summed over logged steps, since the run's first step.

    `runtime_s`, `loss_sum` and `loss_steps` hold what earlier calls of `train` did (read back from
    the checkpoint resumed from); `state()` adds this call's share when Trainer saves a checkpoint.
    """

    def __init__(self, runtime_s: float = 0.0, loss_sum: float = 0.0, loss_steps: int = 0, step: int = 0):
        self.runtime_s, self.loss_sum, self.loss_steps, self.step = runtime_s, loss_sum, loss_steps, step
        self._started: float | None = None
        self._new_loss_sum, self._new_loss_steps, self._last_logged = 0.0, 0, step

    @classmethod
    def from_checkpoint(cls, checkpoint: Path | None) -> TrainingClock:
        """The clock as the checkpoint saved it (a fresh one without a checkpoint, or one saved
        before hfkit kept a clock: then only this call's share is known)."""
        if checkpoint is None:
            return cls()
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        saved = (state.get("stateful_callbacks") or {}).get(cls.__name__) or {}
        attributes = saved.get("attributes") if isinstance(saved, dict) else None
        if not attributes:
            return cls(step=state.get("global_step", 0))
        return cls(**{key: attributes[key] for key in ("runtime_s", "loss_sum", "loss_steps")},
                   step=state.get("global_step", 0))

    @property
    def known(self) -> bool:
        """Did the checkpoint carry a clock (always, for a run that was not resumed)?"""
        return self.step == 0 or self.loss_steps > 0 or self.runtime_s > 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()
        self._last_logged = state.global_step
        # a checkpoint saved before hfkit kept a clock has no entry, and Trainer expects one at save time
        state.stateful_callbacks.setdefault(type(self).__name__, self.state())

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:  # the mean loss of the steps since the previous log
            steps = state.global_step - self._last_logged
            self._new_loss_sum += logs["loss"] * steps
            self._new_loss_steps += steps
            self._last_logged = state.global_step

    def state(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self._started if self._started is not None else 0.0
        return {"args": {}, "attributes": {"runtime_s": self.runtime_s + elapsed,
                                           "loss_sum": self.loss_sum + self._new_loss_sum,
                                           "loss_steps": self.loss_steps + self._new_loss_steps}}


def cover_whole_run(stats, clock: TrainingClock, result, seconds: float) -> None:
    """Make a resumed run's TrainStats (this call's numbers) cover the run since its first step."""
    if not clock.step or not clock.known:
        return
    steps_now = result.global_step - clock.step
    # Trainer counts this call's samples over this call's runtime; one clock (`seconds`) for both
    # the record's runtime and its rate, so rate x runtime is the run's sample count
    samples_now = (result.metrics.get("train_samples_per_second") or 0) * (result.metrics.get("train_runtime") or 0)
    runtime = clock.runtime_s + seconds
    if steps_now > 0 and runtime > 0:  # every step takes the same number of samples
        stats.samples_per_second = round(samples_now * result.global_step / steps_now / runtime, 3)
    if stats.train_loss is not None and clock.loss_steps + steps_now > 0:
        stats.train_loss = (clock.loss_sum + stats.train_loss * steps_now) / (clock.loss_steps + steps_now)
    if stats.tokens_per_second:  # Trainer's token count is cumulative already; the time was not
        stats.tokens_per_second = round(stats.tokens_per_second * seconds / (clock.runtime_s + seconds), 1)
    stats.runtime_s = round(clock.runtime_s + seconds, 2)


def keep_first_command(run_dir: Path, environment: dict[str, Any]) -> dict[str, Any]:
    """env.json for a run folder that may hold one already (a resumed run): the command that started
    the run stays `command`; the commands that resumed it are listed in `resumed_with`."""
    try:
        previous = runs.read_json(run_dir / runs.ENV)
    except (OSError, ValueError):
        return environment
    if not isinstance(previous, dict) or "command" not in previous:
        return environment
    return {**environment, "command": previous["command"],
            "resumed_with": [*previous.get("resumed_with", []), environment["command"]]}
