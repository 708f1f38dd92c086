"""The one exception type the device runtime raises for bad input.

The CLI prints it as a single line; anything else is a bug and keeps its traceback.
"""


class FlorenceEdgeError(Exception):
    """A problem with the user's input: bundle, image, task or text."""
