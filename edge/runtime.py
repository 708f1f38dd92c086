"""LiteRT interpreters and zero-copy access to one signature's tensors.

ai-edge-litert is the runtime. tflite-runtime is accepted only as a fallback for
fp32 and weight-only bundles: it runs them several times slower (its signature
path skips XNNPACK) and silently returns zeros for dynamic-int8 graphs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edge.errors import FlorenceEdgeError


def _interpreter_class():
    """(Interpreter class, runtime name), preferring ai-edge-litert."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite-runtime"
    except ImportError:
        raise FlorenceEdgeError("no LiteRT runtime installed: pip install ai-edge-litert") from None


def runtime_name() -> str:
    return _interpreter_class()[1]


def open_interpreter(path: Path, num_threads: int, quantization: str):
    """Load one .tflite file; refuse dynamic-int8 graphs on tflite-runtime."""
    cls, name = _interpreter_class()
    if name == "tflite-runtime":
        if quantization == "int8":
            raise FlorenceEdgeError(
                "this bundle is dynamic-int8, which tflite-runtime silently computes as zeros; "
                "install ai-edge-litert, or convert with --quant fp32"
            )
        print("florence-edge: ai-edge-litert not found, using tflite-runtime (slower, fp32/weight-only only)",
              file=sys.stderr)
    try:
        return cls(model_path=str(path), num_threads=num_threads)
    except (ValueError, RuntimeError) as exc:
        raise FlorenceEdgeError(f"cannot load graph {path}: {exc}") from None


class Signature:
    """One signature of an interpreter, with its tensors as writable numpy views.

    Views stay valid because tensors are allocated once here and never resized,
    so inputs are written in place (a KV cache slice, not the whole cache) and
    outputs read without a copy.
    """

    def __init__(self, interpreter, key: str):
        self._interpreter = interpreter  # the views are only valid while it lives
        self._wrapper = interpreter._interpreter
        self.key = key
        defs = interpreter._get_full_signature_list()
        if key not in defs:
            raise FlorenceEdgeError(f"graph has no signature '{key}' (has: {', '.join(sorted(defs))})")
        self._sub = self._wrapper.GetSubgraphIndexFromSignature(key)
        self._wrapper.AllocateTensors(self._sub)
        self.inputs = {n: self._view(i) for n, i in defs[key]["inputs"].items()}
        self.outputs = {n: self._view(i) for n, i in defs[key]["outputs"].items()}

    def _view(self, index: int) -> np.ndarray:
        return self._wrapper.tensor(self._wrapper, index, self._sub)

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        """Copy the given inputs in, run, and return the output views (valid until the next call)."""
        for name, value in inputs.items():
            self.inputs[name][...] = value
        self.invoke()
        return self.outputs

    def invoke(self) -> None:
        self._wrapper.Invoke(self._sub)
