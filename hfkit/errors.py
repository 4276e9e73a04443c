"""hfkit's own exceptions, and the small helpers every error message uses.

HfkitError is a mistake the user can fix (recipe, data, model reference): the CLI prints its
message and exits with code 2. Interrupted is a Ctrl-C that saved a checkpoint: exit code 130.
Anything else is a bug in hfkit and keeps its traceback.
"""

from __future__ import annotations

import difflib
from typing import Any


class HfkitError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


class Interrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint; the message says how to resume."""


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
