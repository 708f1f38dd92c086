"""The converter's error type for bad input (source, output, missing extra)."""

from edge.errors import FlorenceEdgeError


class ConversionError(FlorenceEdgeError):
    """A problem the user can fix; the CLI prints it as one line (exit 2)."""
