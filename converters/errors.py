"""The converter's one error type for bad input (source, output, missing extra)."""


class ConversionError(Exception):
    """A problem the user can fix; the CLI prints it as one line."""
