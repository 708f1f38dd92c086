"""florence-edge device runtime: Florence-2 bundles on LiteRT, with no torch."""

from edge.errors import FlorenceEdgeError, FlorenceEdgeWarning

_MODEL_NAMES = ("Encoded", "Florence2", "Result", "Timings", "TokenEvent")
__all__ = [*_MODEL_NAMES, "FlorenceEdgeError", "FlorenceEdgeWarning"]


def __getattr__(name: str):
    # The model (numpy, LiteRT) is imported on first use, so `florence-edge` can first say
    # whether this platform can run it at all (edge.cpu.platform_problem).
    if name in _MODEL_NAMES:
        from edge import model

        return getattr(model, name)
    raise AttributeError(f"module 'edge' has no attribute {name!r}")
