"""A .tflite file read as a list of ops (kind, name, shapes, multiply-adds), and cut into parts.

Profiling a delegated graph needs this: XNNPACK runs a whole graph as one node, so the time of
a part is measured by cutting the part out as a graph of its own (`GraphFile.cut`), the way one
would convert a sub-module on its own, but from the bundle's file, with no converter on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.errors import FlorenceEdgeError

_TFLITE_IDENTIFIER = b"TFL3"


def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@dataclass(frozen=True)
class Op:
    index: int
    kind: str  # the builtin operator's name: CONV_2D, FULLY_CONNECTED, ...
    name: str  # its first output tensor's name (the converter names it after the module)
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    macs: int  # multiply-adds; 0 for ops that are not matrix products or convolutions
    weight_dtype: str  # its constant weights' type, for ops that multiply by or look up weights; else ""


class GraphFile:
    """One signature of a .tflite file: its ops in execution order."""

    def __init__(self, path, signature: str):
        s = _schema()
        try:
            data = open(path, "rb").read()
            if data[4:8] != _TFLITE_IDENTIFIER:
                raise ValueError("not a LiteRT flatbuffer")
            self._model = s.ModelT.InitFromPackedBuf(data, 0)
        except OSError as exc:
            raise FlorenceEdgeError(f"cannot read graph {path}: {exc.strerror}") from None
        except Exception as exc:  # a damaged flatbuffer fails anywhere in the generated reader
            raise FlorenceEdgeError(f"cannot read graph {path} ({type(exc).__name__}): check the bundle "
                                    "with `florence-edge check`") from None
        for buffer in self._model.buffers or []:
            if buffer.offset > 1:  # stored after the flatbuffer, as the quantizer writes weights; 1 means none
                buffer.data = np.frombuffer(data, np.uint8, buffer.size, buffer.offset)
                buffer.offset = buffer.size = 0
        keys = {d.signatureKey.decode(): d.subgraphIndex for d in self._model.signatureDefs or []}
        if signature not in keys:
            raise FlorenceEdgeError(f"graph {path} has no signature '{signature}' (has: {', '.join(sorted(keys))})")
        self.path, self.signature = path, signature
        self._graph = self._model.subgraphs[keys[signature]]
        names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
        codes = [names.get(max(c.builtinCode, c.deprecatedBuiltinCode), "CUSTOM") for c in self._model.operatorCodes]
        self.ops = [self._op(i, op, codes[op.opcodeIndex]) for i, op in enumerate(self._graph.operators)]

    def tensor_shape(self, index: int) -> tuple[int, ...]:
        return tuple(int(n) for n in self._graph.tensors[index].shape)

    def size(self, tensors) -> int:
        """Elements in these tensors together."""
        return sum(int(np.prod(self.tensor_shape(t))) for t in tensors)

    def tensor_type(self, index: int) -> str:
        return _TYPES.get(self._graph.tensors[index].type, "other")

    def is_constant(self, index: int) -> bool:
        data = self._model.buffers[self._graph.tensors[index].buffer].data
        return data is not None and len(data) > 0

    def _op(self, i: int, op, kind: str) -> Op:
        inputs = tuple(int(t) for t in op.inputs if t >= 0)
        outputs = tuple(int(t) for t in op.outputs)
        name = self._graph.tensors[outputs[0]].name.decode(errors="replace") if outputs else ""
        weighted = kind in _WEIGHTED
        weights = [t for t in inputs if weighted and self.is_constant(t) and len(self.tensor_shape(t)) >= 2]
        dtype = self.tensor_type(weights[0]) if weights else ""
        return Op(i, kind, name, inputs, outputs, _macs(self, kind, op, inputs, outputs), dtype)

    def boundary_inputs(self, first: int, last: int) -> list[int]:
        """Tensors ops first..last read that none of them writes and that are not constants."""
        made = {t for op in self.ops[first:last + 1] for t in op.outputs}
        seen = []
        for op in self.ops[first:last + 1]:
            seen += [t for t in op.inputs if t not in made and t not in seen and not self.is_constant(t)]
        return seen

    def boundary_outputs(self, first: int, last: int) -> list[int]:
        """Tensors ops first..last write that a later op or the graph's caller reads."""
        later = {t for op in self.ops[last + 1:] for t in op.inputs} | {int(t) for t in self._graph.outputs}
        made = [t for op in self.ops[first:last + 1] for t in op.outputs]
        return [t for t in made if t in later] or list(self.ops[last].outputs)

    def cut(self, first: int, last: int) -> bytes:
        """Ops first..last (inclusive) as a .tflite of their own: one signature, "part", whose inputs
        are what the ops read from before them and whose outputs are what is read after them."""
        import flatbuffers

        s = _schema()
        inputs, outputs = self.boundary_inputs(first, last), self.boundary_outputs(first, last)
        ops = [self._graph.operators[i] for i in range(first, last + 1)]
        used = sorted({t for op in ops for t in op.inputs if t >= 0} | {t for op in ops for t in op.outputs})
        renumber = {old: new for new, old in enumerate(used)}
        buffers, tensors = [s.BufferT()], []  # buffer 0 is the empty one, as converters write it
        for old in used:
            tensor = _copy(self._graph.tensors[old], s.TensorT)
            if self.is_constant(old):
                buffers.append(self._model.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
            tensors.append(tensor)
        graph = s.SubGraphT()
        graph.tensors, graph.name = tensors, b"part"
        graph.operators = [_renumbered(op, renumber, s) for op in ops]
        graph.inputs = [renumber[t] for t in inputs]
        graph.outputs = [renumber[t] for t in outputs]
        model = s.ModelT()
        model.version, model.operatorCodes, model.description = 3, self._model.operatorCodes, b"florence-edge part"
        model.subgraphs, model.buffers = [graph], buffers
        model.signatureDefs = [_signature(s, graph.inputs, graph.outputs)]
        builder = flatbuffers.Builder(sum(len(b.data) for b in buffers if b.data is not None) + (1 << 20))
        builder.Finish(model.Pack(builder), file_identifier=_TFLITE_IDENTIFIER)
        return bytes(builder.Output())

    def part_shapes(self, first: int, last: int) -> dict:
        """The cut's signature tensors in the manifest's form: side -> name -> {"shape", "dtype"}."""
        sides = {"inputs": self.boundary_inputs(first, last), "outputs": self.boundary_outputs(first, last)}
        return {side: {_port(side, i): {"shape": list(self.tensor_shape(t)), "dtype": self.tensor_type(t)}
                       for i, t in enumerate(ts)} for side, ts in sides.items()}


_WEIGHTED = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "EMBEDDING_LOOKUP", "GATHER"}
# schema TensorType -> name (numpy's, and "int4" for 4-bit weights)
_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8",
          17: "int4"}


def _port(side: str, i: int) -> str:
    return f"{side[:-1]}_{i}"


def _signature(s, inputs, outputs):
    sig = s.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = b"part", 0

    def maps(side, tensors):
        out = []
        for i, t in enumerate(tensors):
            m = s.TensorMapT()
            m.name, m.tensorIndex = _port(side, i).encode(), t
            out.append(m)
        return out

    sig.inputs, sig.outputs = maps("inputs", inputs), maps("outputs", outputs)
    return sig


def _copy(obj, cls):
    new = cls()
    new.__dict__.update(obj.__dict__)
    return new


def _renumbered(op, renumber: dict, s):
    new = _copy(op, s.OperatorT)
    new.inputs = [renumber[t] if t >= 0 else t for t in op.inputs]
    new.outputs = [renumber[t] for t in op.outputs]
    new.intermediates = None
    return new


def _macs(graph: GraphFile, kind: str, op, inputs, outputs) -> int:
    """Multiply-adds of the ops that carry a model's arithmetic; elementwise ops count as 0."""
    if not outputs or kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL"):
        return 0
    out = int(np.prod(graph.tensor_shape(outputs[0])))
    if kind == "CONV_2D":  # filter [out, kh, kw, in]
        _, kh, kw, c_in = graph.tensor_shape(inputs[1])
        return out * kh * kw * c_in
    if kind == "DEPTHWISE_CONV_2D":  # filter [1, kh, kw, channels]: one product per tap and output
        _, kh, kw, _ = graph.tensor_shape(inputs[1])
        return out * kh * kw
    if kind == "FULLY_CONNECTED":  # weights [units, in]
        return out * graph.tensor_shape(inputs[1])[-1]
    # BATCH_MATMUL: the reduced axis of the left operand, which `adj_x` says to read transposed
    left = graph.tensor_shape(inputs[0])
    options = op.builtinOptions
    return out * (left[-2] if options is not None and getattr(options, "adjX", False) else left[-1])
