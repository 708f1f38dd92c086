"""The exception and warning types the device runtime raises for bad input.

The CLI prints a `FlorenceEdgeError` as a single line and exits with its `EXIT_CODE`;
anything else is a bug and keeps its traceback.
"""


class FlorenceEdgeError(Exception):
    """A problem with the user's input: bundle, image, task, text, argument or output path."""

    EXIT_CODE = 2


class FlorenceEdgeWarning(UserWarning):
    """An answer that may mean little: a task the bundle's model was not trained for."""
