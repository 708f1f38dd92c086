"""`florence-edge bench --profile`: where each graph's time goes on this device.

XNNPACK runs a whole graph as one delegated node, and LiteRT's Python API has no op profiler,
so time is measured the way one would by converting sub-modules on their own: each part of a
graph (the vision tower's patch embeddings, blocks and projection) and then each op is cut out of
the bundle's own file (`edge.commands.graph_file`) and timed alone on the runtime the bundle runs on, with
the same threads. Multiply-adds are counted from the ops' shapes, so every row says how close its
part runs to what the CPU can do. Parts run alone miss only what XNNPACK fuses across their
edges: their sum is reported against the whole graph's time.
"""

from __future__ import annotations

import functools
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edge import manifest as mf
from edge.commands.graph_file import GraphFile, Op
from edge.quiet import quiet
from edge.runtime import open_graph

# Kinds whose time is data movement, shown so a profile makes layout copies and float islands visible.
_MOVES = {"RESHAPE", "TRANSPOSE", "SLICE", "PAD", "CONCATENATION", "GATHER", "BROADCAST_TO", "STRIDED_SLICE"}
_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}


@dataclass
class Row:
    name: str
    ops: int
    ms: float
    gmac: float
    xnnpack_ops: int  # how many of its ops XNNPACK ran (the rest ran on LiteRT's own kernels)

    @property
    def gmac_per_s(self) -> float:
        return self.gmac / self.ms * 1e3 if self.ms else 0.0


@dataclass
class GraphProfile:
    role: str
    signature: str
    whole_ms: float  # the graph as one piece, timed the same way as its parts
    invoke_ms: float  # what one run costs whatever it computes; taken off every row, the whole included
    parts: list[Row] = field(default_factory=list)
    kinds: list[Row] = field(default_factory=list)

    @property
    def parts_ms(self) -> float:
        return sum(r.ms for r in self.parts)

    @property
    def kinds_ms(self) -> float:
        return sum(r.ms for r in self.kinds)

    @property
    def gmac(self) -> float:
        return sum(r.gmac for r in self.kinds)


def profiled_signature(manifest: mf.Manifest, role: str) -> str:
    """The signature a CAPTION runs in each graph: the shortest prompt, one beam, the smallest cache."""
    prompt = min(manifest.prompt_lens)
    if role == mf.VISION:
        return mf.VISION
    if role == mf.ENCODER:
        return mf.encode_signature_name(prompt)
    batch, cache = min(manifest.decoder_buckets())
    return mf.decode_signature_name(batch, cache, prompt)


def vision_parts(ops: list[Op]) -> list[tuple[str, int, int]]:
    """(label, first op, last op) for each patch embedding, each DaViT half-block (spatial or channel)
    and the projection, read from the module names the converter gives the ops' outputs.

    A half-block starts at its first depthwise convolution (`conv1`); a patch embedding at its
    `norm` or `conv` after a block; the projection at the first `projector` op."""
    starts, stage, block = [], 0, 0
    for op in ops:
        leaf = op.name.rsplit("/", 1)[-1].split(";")[0]
        if "projector" in op.name:
            starts.append(("projection", op.index))
            break
        if leaf.endswith("_conv1") and op.kind == "DEPTHWISE_CONV_2D":
            block += 1
            starts.append((f"stage {stage} half-block {block}", op.index))
        elif (leaf.endswith("Conv2d_conv") or leaf.endswith("LayerNorm_norm")) and (
                not starts or not starts[-1][0].endswith("patch embedding")):
            stage, block = stage + 1, 0
            starts.append((f"stage {stage} patch embedding", op.index))
    if not starts or starts[0][1] != 0:
        starts.insert(0, ("input", 0))
    ends = [first - 1 for _, first in starts[1:]] + [len(ops) - 1]
    return [(_block_kind(label, ops[first:last + 1]), first, last) for (label, first), last in zip(starts, ends)]


def _block_kind(label: str, ops: list[Op]) -> str:
    if "half-block" not in label:
        return label
    return label.replace("half-block", "spatial" if any("window_attn" in o.name for o in ops) else "channel")


class _Cut:
    """Ops first..last of a graph cut out, loaded on the bundle's runtime with random inputs."""

    def __init__(self, graph: GraphFile, first: int, last: int, threads: int, quantization: str, runtime: str,
                 folder: Path, rng: np.random.Generator):
        path = folder / f"ops-{first}-{last}.tflite"
        path.write_bytes(graph.cut(first, last))
        shapes = graph.part_shapes(first, last)
        with quiet(f"profiling ops {first}-{last} of {graph.path}"):
            self.loaded = open_graph(path, threads, quantization, runtime=runtime)
            self.signature = self.loaded.signature("part", shapes)
            for name, tensor in self.signature.inputs.items():
                tensor[...] = _sample(rng, shapes["inputs"][name])
            self.signature.invoke()  # the first run sets up the delegate's workspace
        path.unlink()
        self.times: list[float] = []

    def run(self) -> None:
        start = time.perf_counter()
        self.signature.invoke()
        self.times.append((time.perf_counter() - start) * 1e3)

    @property
    def ms(self) -> float:
        return statistics.median(self.times)

    def close(self) -> None:
        self.loaded.close()


def _sample(rng: np.random.Generator, spec: dict) -> np.ndarray:
    """Activations drawn at random (dynamic quantization would see zeros as a degenerate range);
    integer inputs (token ids, positions) as zeros, valid everywhere."""
    if spec["dtype"].startswith("float"):
        return rng.standard_normal(spec["shape"]).astype(spec["dtype"])
    return np.zeros(spec["shape"], spec["dtype"])


def _timed_together(cuts: list[_Cut], reps: int, rounds: int = 3) -> list[float]:
    """Median ms of each cut: in each of `rounds` rounds every cut runs `reps` times in a row (warm,
    as a graph runs frame after frame), so a slow moment of the machine falls on all of them alike
    and their sum compares with the whole's time."""
    try:
        for _ in range(rounds):
            for cut in cuts:
                for _ in range(reps):
                    cut.run()
        return [cut.ms for cut in cuts]
    finally:
        for cut in cuts:
            cut.close()


def profile_graph(path: Path, role: str, signature: str, threads: int, quantization: str, runtime: str,
                  reps: int = 3, progress=None) -> GraphProfile:
    """Time a graph whole, by part (the vision graph's blocks; other graphs are one part) and op by
    op; op rows are summed by kind. The whole and its parts are loaded together and run in turn."""
    graph = GraphFile(path, signature)
    last = len(graph.ops) - 1
    rng = np.random.default_rng(0)
    spans = vision_parts(graph.ops) if role == mf.VISION else []
    with tempfile.TemporaryDirectory(prefix="florence-edge-profile-") as folder:
        def cut(first, end):
            return _Cut(graph, first, end, threads, quantization, runtime, Path(folder), rng)

        if progress:
            progress(f"{role}: the whole graph and its {len(spans)} parts" if spans else f"{role}: the whole graph")
        idle = min(graph.ops, key=lambda op: graph.size(op.outputs)).index
        invoke_ms, whole_ms, *parts_ms = _timed_together(
            [cut(idle, idle), cut(0, last)] + [cut(first, end) for _, first, end in spans], reps)
        net = functools.partial(_net, invoke_ms)
        result = GraphProfile(role, signature, net(whole_ms), invoke_ms)
        parts = [_row(label, graph.ops[first:end + 1], net(ms), []) for (label, first, end), ms in zip(spans, parts_ms)]
        result.parts = parts or [_row(role, graph.ops, result.whole_ms, [])]
        kinds: dict[str, list] = {}
        for op in graph.ops:
            if progress and op.index % 100 == 0:
                progress(f"{role}: op {op.index + 1}/{len(graph.ops)}")
            alone = cut(op.index, op.index)
            on_xnnpack = alone.loaded.on_xnnpack()
            (ms,) = map(net, _timed_together([alone], reps, rounds=1))
            kinds.setdefault(_kind(op), []).append((op, ms, on_xnnpack))
    for kind, timed in kinds.items():
        ops = [op for op, _, _ in timed]
        result.kinds.append(_row(kind, ops, sum(ms for _, ms, _ in timed), [x for _, _, x in timed]))
    result.kinds.sort(key=lambda r: -r.ms)
    return result


def _net(invoke_ms: float, ms: float) -> float:
    """A cut's time less the fixed cost of a run (the call, waking the threads): run alone, every part
    and op pays it once, where the whole graph pays it once in all."""
    return max(0.0, ms - invoke_ms)


def _kind(op: Op) -> str:
    """An op's kind, with its weights' type where it has some (an int8 and an fp32 convolution differ)."""
    return f"{op.kind} ({op.weight_dtype})" if op.weight_dtype else op.kind


def _row(name: str, ops: list[Op], ms: float, on_xnnpack: list[bool]) -> Row:
    return Row(name, len(ops), ms, sum(o.macs for o in ops) / 1e9, sum(on_xnnpack) if on_xnnpack else -1)


def profile_bundle(bundle, threads: int, runtime: str, reps: int = 3, progress=None) -> list[GraphProfile]:
    manifest = mf.load_manifest(bundle)
    return [profile_graph(manifest.graph_path(role), role, profiled_signature(manifest, role), threads,
                          manifest.quantization, runtime, reps, progress)
            for role in (mf.VISION, mf.ENCODER, mf.DECODER)]


def kind_note(name: str) -> str:
    """What a kind's time is, where it is not arithmetic."""
    kind = name.split(" ")[0]
    if kind in _MOVES:
        return "data movement"
    if kind in _CONVERSIONS:
        return "int8 <-> float conversion"
    return ""


def _share(ms: float, whole: float) -> str:
    return f"{100 * ms / whole:.1f}%" if whole else "-"


def _peak_line(peak: dict, threads: int) -> str:
    if not peak:
        return (f"nominal peak for {threads} threads: unknown (the OS reports no clock); compare GMAC/s with the "
                "fastest fully-connected row")
    return f"nominal peak for {threads} threads: " + ", ".join(f"{k} {v:.0f} GMAC/s" for k, v in peak.items())


def _table(title: str, rows: list[Row], whole: float, notes: bool) -> list[str]:
    head = f"| {title} | ops | ms | share | GMAC | GMAC/s | on XNNPACK |" + (" |" if notes else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        where = "-" if r.xnnpack_ops < 0 else f"{r.xnnpack_ops}/{r.ops}"
        cells = [r.name, str(r.ops), f"{r.ms:.1f}", _share(r.ms, whole), f"{r.gmac:.2f}", f"{r.gmac_per_s:.0f}", where]
        lines.append("| " + " | ".join(cells + ([kind_note(r.name)] if notes else [])) + " |")
    return lines


def format_profiles(profiles: list[GraphProfile], fmt: str, threads: int, peak: dict) -> str:
    """md (a table per graph for parts and for op kinds), json or csv (one line per row)."""
    if fmt == "json":
        return json.dumps({"threads": threads, "peak_gmacs": peak, "graphs": [
            {"role": p.role, "signature": p.signature, "whole_ms": p.whole_ms, "invoke_ms": p.invoke_ms,
             "parts_ms": p.parts_ms,
             "ops_alone_ms": p.kinds_ms, "gmac": p.gmac,
             "parts": [asdict(r) for r in p.parts], "kinds": [asdict(r) for r in p.kinds]} for p in profiles]},
            indent=2)
    if fmt == "csv":
        lines = ["graph,section,name,ops,ms,share,gmac,gmac_per_s,xnnpack_ops"]
        for p in profiles:
            for section, rows in (("whole", [Row(p.role, sum(r.ops for r in p.parts), p.whole_ms, p.gmac, -1)]),
                                  ("part", p.parts), ("kind", p.kinds)):
                lines += [f"{p.role},{section},{r.name},{r.ops},{r.ms:.3f},{r.ms / p.whole_ms:.4f},{r.gmac:.4f},"
                          f"{r.gmac_per_s:.1f},{r.xnnpack_ops}" for r in rows]
        return "\n".join(lines)
    lines = [_peak_line(peak, threads)]
    for p in profiles:
        lines += ["", f"### {p.role} ({p.signature}): {p.whole_ms:.1f} ms whole, {p.gmac:.2f} GMAC "
                      f"({p.gmac / p.whole_ms * 1e3 if p.whole_ms else 0:.0f} GMAC/s); every row less "
                      f"{p.invoke_ms:.3f} ms, the cost of a run that computes nothing", ""]
        if len(p.parts) > 1:
            lines += _table("part", p.parts, p.whole_ms, False)
            lines.append(f"\nparts run alone add up to {p.parts_ms:.1f} ms ({_share(p.parts_ms, p.whole_ms)} "
                         "of the whole)\n")
        lines += _table("op kind (weights)", p.kinds, p.whole_ms, True)
        lines.append(f"\nops run alone add up to {p.kinds_ms:.1f} ms ({_share(p.kinds_ms, p.whole_ms)} of the "
                     "whole: alone, each reshape or transpose is a copy that a whole graph often avoids); "
                     "an op not on XNNPACK ran on LiteRT's own kernels")
    return "\n".join(lines)
