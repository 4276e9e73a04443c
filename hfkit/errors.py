"""hfkit's own exceptions, and the small helpers every error message uses.

HfkitError is a mistake the user can fix (recipe, data, model reference): the CLI prints its
message and exits with code 2. Interrupted is a stop on Ctrl-C (exit code 130) or SIGTERM (143, what
Slurm, Kubernetes and `timeout` send), after the job recorded it and saved what it could. Anything
else is a bug in hfkit and keeps its traceback.
"""

from __future__ import annotations

import difflib
from typing import Any


class HfkitError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


class Interrupted(Exception):
    """A job stopped on Ctrl-C or SIGTERM after recording it; the message says what was kept and how
    to go on. `exit_code`: 130 for SIGINT, 143 for SIGTERM (128 + the signal's number)."""

    def __init__(self, message: str, exit_code: int = 130):
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM arriving outside training's own handler: unwinds like Ctrl-C (the run records where it
    stopped), and the command exits with 143."""


def stop_signal(stop: BaseException) -> tuple[str, int]:
    """How a KeyboardInterrupt came (its name for messages) and the exit code it means."""
    return ("SIGTERM", 143) if isinstance(stop, Terminated) else ("Ctrl-C", 130)


class Pruned(Exception):
    """A study's pruner stopped this trial's training early (hfkit.study_trial); the run record
    says `pruned`, with the evaluations it had (`log_history`)."""

    def __init__(self, message: str, log_history: list | None = None):
        super().__init__(message)
        self.log_history = log_history or []


def suggest(name: Any, valid: list[str]) -> str:
    """'; did you mean X?' for a mistyped key, else the list of valid keys."""
    close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; valid keys: {', '.join(valid)}" if valid else ""


def suggest_value(name: str, valid: list[str]) -> str:
    """'; did you mean X? expected one of: ...' for a mistyped value."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"; {hint}expected one of: {', '.join(valid)}"


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type when the message is empty)."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
