"""florence-edge device runtime: Florence-2 bundles on LiteRT, with no torch."""

from edge.errors import FlorenceEdgeError
from edge.model import Encoded, Florence2, Result, Timings, TokenEvent

__all__ = ["Encoded", "Florence2", "FlorenceEdgeError", "Result", "Timings", "TokenEvent"]
