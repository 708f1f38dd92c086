"""The graphs' runtime: LiteRT compiled models with zero-copy numpy tensors.

ai-edge-litert's CompiledModel is the runtime. It runs every op XNNPACK takes and,
given a weight-cache file, packs each graph's weights once into that file and maps
it on later loads: a decoder's signatures share one packed copy instead of one each
(six signatures: 527 -> 90 MB for base int8), and a base bundle loads in 0.3-0.7 s
instead of 3.8 s. tflite-runtime is accepted only as a fallback for fp32 and
weight-only bundles: it runs them several times slower (its signature path skips
XNNPACK) and silently returns zeros for dynamic-int8 graphs.

Tensors the host reads or writes are flat (1-D) in the graphs: the compiled model
binds numpy memory without a copy only as 1-D buffers. A `Signature` shows them in
their real shapes (from the manifest) as views, so inputs are written in place (a
KV-cache slice, not the whole cache) and outputs are read without a copy. Tensors
only graphs touch (cross-attention K/V) keep their shapes and live in runtime
memory as `DeviceTensor`s, handed from the encoder to the decoder without a copy.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib
import mmap
import os
import re
import sys
import weakref
from pathlib import Path

import numpy as np

from edge import cpu, weight_cache
from edge.errors import FlorenceEdgeError
from edge.memory import drop_file_pages
from edge.quiet import quiet

# xnnpack_flags replaces the delegate's defaults (QS8 | QU8, 0x3) rather than adding to them, so they
# are restated. TRANSIENT_INDIRECTION_BUFFER (0x20) keeps each convolution's indirection buffer in
# the shared workspace instead of its own: base's peak 21 MB lower, steps as fast.
_XNNPACK_FLAGS = 0x1 | 0x2 | 0x20
_ALIGNMENT = 64  # the compiled model copies host memory that is not 64-byte aligned
_OPEN: weakref.WeakSet = weakref.WeakSet()
_ENVIRONMENT = []  # one LiteRT environment per process, made on first use


def _environment():
    if not _ENVIRONMENT:
        import ai_edge_litert
        from ai_edge_litert.environment import Environment

        # Called inside quiet(): making it logs every accelerator it probes.
        _ENVIRONMENT.append(Environment.create(runtime_path=os.path.dirname(ai_edge_litert.__file__)))
    return _ENVIRONMENT[0]


@atexit.register
def _close_quietly() -> None:
    # Tearing an environment down logs each accelerator again; at exit nobody needs that.
    # The runtime's own default environment (made on the first run) dies with the library,
    # after Python is done, so stderr is closed for that last stretch.
    if not _ENVIRONMENT:
        return
    with quiet():
        for graph in list(_OPEN):
            graph.close()
        for env in _ENVIRONMENT:
            env.close()
    sys.stderr.flush()
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)


RUNTIMES = ("compiled", "interpreter")
# Bundles whose activations are quantized at run time: tflite-runtime computes them as zeros.
DYNAMIC_QUANTIZATIONS = ("int8", "int8-static", "int4", "int4-vision")
# Bundles only XNNPACK runs at speed. The interpreter path runs the decoder on the built-in kernels
# (see _XNNPACK_MAX_SIGNATURES), whose int4 fully-connected is a reference loop: base int4's decoder
# step took 290 ms there (8 ms for int8), its text encoder 532 ms (126).
COMPILED_ONLY = ("int4", "int4-vision")
# An interpreter hands every subgraph of a file to XNNPACK at its first allocation, and each packs
# its own copy of the weights (no weight cache on that path): the base decoder's 12 signatures took
# 1.2 GB. A file with more signatures than this runs on the interpreter's built-in kernels instead.
_XNNPACK_MAX_SIGNATURES = 2


@functools.lru_cache(maxsize=1)
def runtime_name() -> str:
    """The installed runtime package: 'ai-edge-litert', else 'tflite-runtime'."""
    for name, module in (("ai-edge-litert", "ai_edge_litert.compiled_model"),
                         ("tflite-runtime", "tflite_runtime.interpreter")):
        try:
            importlib.import_module(module)
            return name
        except ImportError:
            pass
    raise FlorenceEdgeError(cpu.platform_problem() or "no LiteRT runtime installed: pip install ai-edge-litert")


_FAIL_FAST = b"This binary was compiled with "


def _accelerator_libraries() -> list[Path]:
    import ai_edge_litert

    return sorted(Path(ai_edge_litert.__file__).parent.glob("libLiteRt*Accelerator*.so"))


@functools.lru_cache(maxsize=1)
def compiled_runtime_blockers() -> tuple[str, str]:
    """(library, the CPU features it needs that this CPU lacks); ('', '') when the compiled path is safe.

    Making a CompiledModel loads ai-edge-litert's GPU accelerator plugin into the process, whatever
    accelerator is asked for (the model loader makes its own environment, which finds the plugin by
    name next to the library). The aarch64 plugin of 2.3 is built for ARMv8.2 (dot product, LSE
    atomics, fp16 ...) and aborts with SIGILL on a Cortex-A53/A72. It names what it needs in its own
    fail-fast messages, so they are read from the file: a newer wheel that needs more is caught too.
    """
    if not cpu.features():  # the OS does not say: nothing to decide on
        return "", ""
    for lib in _accelerator_libraries():
        with open(lib, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = data.find(_FAIL_FAST)
            window = data[start:start + 65536] if start >= 0 else b""
        needs = {m.decode() for m in re.findall(_FAIL_FAST + rb"([\w.]+) enabled", window)}
        lacking = cpu.missing(needs)
        if lacking:
            return lib.name, ", ".join(lacking)
    return "", ""


def select_runtime(requested: str | None = None, quantization: str | None = None) -> str:
    """'compiled' (LiteRT CompiledModel), 'interpreter' (LiteRT Interpreter) or 'tflite-runtime'.

    `requested` (else $FLORENCE_EDGE_RUNTIME, else 'auto'): 'auto' takes the compiled path wherever the
    CPU can load it, the interpreter on cores older than its plugin (Pi 3, Pi 4, Zero 2 W, CM4).
    `quantization` (a bundle's): refused on a path that cannot run it at a usable speed.
    """
    path = _path_for(requested or os.environ.get("FLORENCE_EDGE_RUNTIME") or "auto")
    if quantization in COMPILED_ONLY and path != "compiled":
        raise FlorenceEdgeError(f"this bundle's {quantization} weights need the compiled runtime, and "
                                f"{_why_not(path)}; "
                                "the other paths' kernels run them about 35x slower: convert with --quant int8")
    return path


def _why_not(path: str) -> str:
    """Why `path` was taken instead of the compiled one."""
    if path == "tflite-runtime":
        return "ai-edge-litert is not installed"
    lib, lacking = compiled_runtime_blockers()
    return f"this CPU takes the interpreter ({lib} needs {lacking})" if lib else "the interpreter was asked for"


def runtimes_for(quantization: str) -> tuple[str, ...]:
    """The paths of RUNTIMES a bundle of `quantization` runs on."""
    return ("compiled",) if quantization in COMPILED_ONLY else RUNTIMES


def _path_for(requested: str) -> str:
    if requested not in ("auto", *RUNTIMES):
        raise FlorenceEdgeError(f"unknown runtime {requested!r} (choose auto, {', '.join(RUNTIMES)})")
    if runtime_name() == "tflite-runtime":
        return "tflite-runtime"
    if requested == "interpreter":
        return "interpreter"
    lib, lacking = compiled_runtime_blockers()
    if not lib:
        return "compiled"
    if requested == "compiled":
        raise FlorenceEdgeError(f"the compiled runtime would load {lib}, built for CPU features this CPU lacks "
                                f"({lacking}), and die; use the interpreter runtime")
    return "interpreter"


def add_runtime_argument(parser) -> None:
    """`--runtime` for the commands that load a bundle."""
    parser.add_argument("--runtime", choices=("auto", *RUNTIMES), default=None,
                        help="LiteRT path: compiled model or interpreter (default: auto, by what the CPU can load; "
                             "also $FLORENCE_EDGE_RUNTIME)")


def cache_folder() -> Path | None:
    """$FLORENCE_EDGE_CACHE, else ~/.cache/florence-edge (the bundle itself may be read-only);
    None if it cannot be made or written."""
    try:
        default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "florence-edge"
        folder = Path(os.environ.get("FLORENCE_EDGE_CACHE") or default)
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError):  # RuntimeError: a service user without a home
        return None
    return folder if os.access(folder, os.W_OK) else None


def weight_cache_file(sha256: str) -> Path | None:
    """Where a graph's packed weights are kept, in `cache_folder()`; None (pack in memory) without one.

    Named by the graph file's checksum and the XNNPACK flags it is packed under, so a changed graph or
    flag set never meets an old cache: LiteRT takes a cache packed under other flags as stale, says so
    ("Cache file is stale") whenever the model is freed, and never writes it again.
    """
    folder = cache_folder()
    return folder / f"{sha256[:32]}-x{_XNNPACK_FLAGS:02x}.xnnpack" if folder else None


def open_graph(path: Path, num_threads: int, quantization: str, weight_cache: Path | None = None,
               runtime: str = "compiled", signatures: int = 1):
    """Load one .tflite file of `signatures` signatures on `runtime` (see `select_runtime`); refuse
    dynamic-int8 on tflite-runtime."""
    builtin = signatures > _XNNPACK_MAX_SIGNATURES
    if runtime == "compiled":
        return CompiledGraph(path, num_threads, weight_cache)
    if runtime == "interpreter":
        from ai_edge_litert.interpreter import Interpreter

        return InterpreterGraph(path, num_threads, Interpreter, builtin)
    if quantization in DYNAMIC_QUANTIZATIONS:
        raise FlorenceEdgeError(
            f"this bundle is dynamic-range {quantization}, which tflite-runtime silently computes as zeros; "
            "install ai-edge-litert, or convert with --quant fp32"
        )
    print("florence-edge: ai-edge-litert not found, using tflite-runtime (slower, fp32/weight-only only)",
          file=sys.stderr)
    return InterpreterGraph(path, num_threads, _fallback_interpreter(), builtin)


def _builtin_kernels(interpreter_class):
    return importlib.import_module(interpreter_class.__module__).OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def _fallback_interpreter():
    from tflite_runtime.interpreter import Interpreter

    return Interpreter


def _aligned_empty(size: int, dtype) -> np.ndarray:
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(size * itemsize + _ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start:start + size * itemsize].view(dtype)


class Signature:
    """One signature's tensors as numpy views in their real shapes, and a way to run it.

    Views stay valid for the signature's life: the memory is allocated once and
    never resized.
    """

    def __init__(self, key: str, inputs: dict, outputs: dict, run, owner):
        self.key = key
        self.inputs = inputs
        self.outputs = outputs
        self._run = run
        self._owner = owner  # whatever holds the memory behind the views

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        """Copy the given inputs in, run, and return the output views (valid until the next call)."""
        for name, value in inputs.items():
            self.inputs[name][...] = value
        self.invoke()
        return self.outputs

    def invoke(self) -> None:
        self._run()


class DeviceTensor:
    """A tensor in runtime memory, in its graph shape; the host writes or reads it whole, by copy.

    `t[...] = array` writes and `np.array(t)` reads, as for a numpy view.
    """

    def __init__(self, buffer, shape, dtype):
        self.buffer = buffer
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    def __setitem__(self, key, value) -> None:
        if key is not Ellipsis:
            raise TypeError("a DeviceTensor is written whole: t[...] = array")
        self.buffer.write(np.broadcast_to(np.asarray(value, self.dtype), self.shape))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        array = self.buffer.read(int(np.prod(self.shape)), self.dtype).reshape(self.shape)
        return array if dtype is None else array.astype(dtype)


def _is_device(detail: dict) -> bool:
    # The converter leaves only graph-only tensors unflattened.
    return len(detail["shape"]) > 1


def _shareable(tensor, name: str, detail: dict) -> DeviceTensor:
    if not isinstance(tensor, DeviceTensor) or not _is_device(detail):
        raise FlorenceEdgeError(f"input {name} cannot be shared: only graph-only tensors are")
    if tensor.shape != tuple(detail["shape"]) or tensor.dtype != np.dtype(detail["dtype"]):
        raise FlorenceEdgeError(f"cannot share a {tensor.dtype}{list(tensor.shape)} tensor as "
                                f"{name}: {np.dtype(detail['dtype'])}{list(detail['shape'])}")
    return tensor


def _cannot_load(path: Path, exc: Exception) -> FlorenceEdgeError:
    return FlorenceEdgeError(f"cannot load graph {path} ({exc}); copy the bundle again or convert it again")


def _guarded(path: Path, key: str, run):
    """`run` with a native failure turned into one line naming the file and the signature."""
    def guarded():
        try:
            run()
        except RuntimeError as exc:
            said = " ".join(str(exc).split())[:300]
            raise FlorenceEdgeError(f"running {key} of {path} failed ({said}); the file may be damaged: "
                                    "check it with `florence-edge check`, or convert the model again") from None

    return guarded


def _check_signature(key: str, available) -> None:
    if key not in available:
        raise FlorenceEdgeError(f"graph has no signature '{key}' (has: {', '.join(sorted(available))})")


def _view(tensor, name: str, shapes: dict):
    shape = shapes[name]["shape"]
    size = int(np.prod(tensor.shape))
    if size != int(np.prod(shape)):
        raise FlorenceEdgeError(f"tensor {name} holds {size} values, the manifest says {shape}")
    return tensor if isinstance(tensor, DeviceTensor) else tensor.reshape(shape)


class CompiledGraph:
    """A .tflite file as an ai-edge-litert CompiledModel on the CPU (XNNPACK)."""

    def __init__(self, path: Path, num_threads: int, cache: Path | None):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.options import CpuOptions, Options

        self._path = path
        cpu_options = CpuOptions(num_threads=num_threads)
        cpu_options.xnnpack_flags = _XNNPACK_FLAGS
        if cache is not None:
            cpu_options.xnnpack_weight_cache_path = str(cache)
        with weight_cache.held(cache) if cache else contextlib.nullcontext():
            if cache and (note := weight_cache.prepare(cache)):
                print(f"florence-edge: {note}", file=sys.stderr)
            try:
                with quiet(f"loading {path}"):
                    self._model = CompiledModel.from_file(str(path), environment=_environment(),
                                                          options=Options(cpu_options=cpu_options))
            except (ValueError, RuntimeError) as exc:
                raise _cannot_load(path, exc) from None
            if cache:
                weight_cache.seal(cache)
        drop_file_pages(path)  # its weights are packed (or mapped from the weight cache) by now
        self._buffers: list = []
        _OPEN.add(self)

    def on_xnnpack(self) -> bool:
        """Whether XNNPACK runs every op of this graph."""
        return bool(self._model.is_fully_accelerated())

    def close(self) -> None:
        """Free the native model and buffers now (signatures of this graph stop working); idempotent."""
        if self not in _OPEN:
            return
        _OPEN.discard(self)
        for buffer in self._buffers:
            buffer.destroy()
        self._buffers = []
        self._model.close()

    def signature(self, key: str, shapes: dict, share: dict | None = None) -> Signature:
        """Bind memory to every tensor of `key`; `shapes` is the manifest's entry for it.

        Flat tensors get host memory; graph-only tensors get runtime memory, or for inputs
        the `DeviceTensor` that `share` maps their name to (another signature's output):
        the encoder's cross-attention outputs are every decoder signature's inputs, with
        neither a copy per prompt nor a copy per signature.
        """
        _check_signature(key, self._model.get_signature_list())
        share = share or {}
        tensors, buffers = {}, {}
        for side, details in (("inputs", self._model.get_input_tensor_details(key)),
                              ("outputs", self._model.get_output_tensor_details(key))):
            bound = {n: self._bind(key, side, n, d, share.get(n) if side == "inputs" else None)
                     for n, d in details.items()}
            tensors[side] = {n: t for n, (t, _) in bound.items()}
            buffers[side] = {n: b for n, (_, b) in bound.items()}
        model = self._model

        done = []

        def run():
            if done:
                model.run_by_name(key, buffers["inputs"], buffers["outputs"])
                return
            with quiet(f"running {key}"):  # a first run may make the runtime's default environment, which logs
                model.run_by_name(key, buffers["inputs"], buffers["outputs"])
            done.append(True)

        views = {side: {n: _view(t, n, shapes[side]) for n, t in tensors[side].items()} for side in tensors}
        return Signature(key, views["inputs"], views["outputs"], _guarded(self._path, key, run),
                         owner=(model, buffers, tensors))

    def _bind(self, key: str, side: str, name: str, detail: dict, shared):
        """(tensor, its buffer): the shared tensor, runtime memory for a graph-only tensor, else numpy
        memory bound zero-copy."""
        from ai_edge_litert.tensor_buffer import TensorBuffer

        if shared is not None:
            tensor = _shareable(shared, name, detail)
            return tensor, tensor.buffer  # the signature that made it owns it
        if _is_device(detail):
            make = (self._model.create_input_buffer_by_name if side == "inputs"
                    else self._model.create_output_buffer_by_name)
            tensor = DeviceTensor(make(key, name), detail["shape"], detail["dtype"])
            buffer = tensor.buffer
        else:
            tensor = _aligned_empty(int(np.prod(detail["shape"])), detail["dtype"])
            buffer = TensorBuffer.create_from_host_memory(tensor)
        self._buffers.append(buffer)
        return tensor, buffer


class InterpreterGraph:
    """A .tflite file as a (tflite-runtime or ai-edge-litert) Interpreter: the path for CPUs the
    compiled model cannot run on, and the fallback without ai-edge-litert."""

    def __init__(self, path: Path, num_threads: int, interpreter_class, builtin_kernels: bool = False):
        """`builtin_kernels`: the interpreter's own kernels instead of XNNPACK (see _XNNPACK_MAX_SIGNATURES)."""
        self._path = path
        self.kernels = "builtin" if builtin_kernels else "xnnpack"
        options = {"experimental_op_resolver_type": _builtin_kernels(interpreter_class)} if builtin_kernels else {}
        try:
            with quiet(f"loading {path}"):
                self._interpreter = interpreter_class(model_path=str(path), num_threads=num_threads, **options)
        except (ValueError, RuntimeError) as exc:
            raise _cannot_load(path, exc) from None

    def on_xnnpack(self) -> bool:
        """Whether XNNPACK took ops of this graph once a signature was prepared: the interpreter says only
        whether a delegate node exists, so this is exact for a one-op graph, as profiling asks it."""
        wrapper = self._interpreter._interpreter
        return self.kernels == "xnnpack" and any(wrapper.NodeName(i) == "DELEGATE" for i in range(wrapper.NumNodes()))

    def close(self) -> None:
        """Drop this graph's reference to the interpreter (its signatures keep theirs)."""
        self._interpreter = None

    def signature(self, key: str, shapes: dict, share: dict | None = None) -> Signature:
        """As `CompiledGraph.signature`, but an interpreter owns its tensors: `share` is ignored."""
        defs = self._interpreter._get_full_signature_list()
        _check_signature(key, defs)
        wrapper = self._interpreter._interpreter
        sub = wrapper.GetSubgraphIndexFromSignature(key)
        with quiet(f"preparing {key} of {self._path}"):  # the first allocation applies XNNPACK, which logs
            wrapper.AllocateTensors(sub)
        if self.kernels == "xnnpack":  # packed now; built-in kernels read the weights from the file every run
            drop_file_pages(self._path)
        views = {side: {n: _view(wrapper.tensor(wrapper, i, sub), n, shapes[side]) for n, i in defs[key][side].items()}
                 for side in ("inputs", "outputs")}
        return Signature(key, views["inputs"], views["outputs"], _guarded(self._path, key, lambda: wrapper.Invoke(sub)),
                         owner=self._interpreter)
