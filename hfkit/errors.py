"""hfkit's own exceptions.

HfkitError is a mistake the user can fix (recipe, data, model reference): the CLI prints its
message and exits with code 2. Interrupted is a Ctrl-C that saved a checkpoint: exit code 130.
Anything else is a bug in hfkit and keeps its traceback.
"""


class HfkitError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""


class Interrupted(Exception):
    """Training stopped on Ctrl-C after saving a checkpoint; the message says how to resume."""
