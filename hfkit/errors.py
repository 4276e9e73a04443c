"""The one error type for mistakes a user can fix (recipe, data, model reference).

The CLI prints its message on one line and exits with code 2; anything else is a bug
in hfkit and keeps its traceback.
"""


class HfkitError(Exception):
    """A user-facing problem: the message names what is wrong and how to fix it."""
