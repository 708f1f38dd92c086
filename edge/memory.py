"""Memory: a process' peak, what a bundle needs at its peak, and what this machine can give it.

A bundle's need is measured, not guessed: `convert` runs it in a fresh process, once with an empty
weight cache (a device's first start) and once more with it, and writes both peaks into the
manifest. `live` compares it with the memory it may use before loading anything, so a board too
small for a model gets one line saying so instead of the kernel's OOM killer.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from edge.errors import FlorenceEdgeError

MEASURED_TASK = "<CAPTION>"


def give_back_freed_memory() -> None:
    """Have the C allocator return freed memory to the system (glibc's malloc_trim): a closed graph's
    blocks otherwise stay in the process' heaps, counted in its RSS (low-memory mode, base: a peak of
    467-487 MB over four frames without it, 376 MB with it)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim  # glibc; musl and macOS have none
    except (OSError, AttributeError):
        return None


_MADV_DONTNEED = 4


def drop_file_pages(path) -> float:
    """Let go of the pages this process has read from `path` through its read-only mappings of it
    (madvise MADV_DONTNEED; Linux), returning the MB they span. A graph file's weights are read once,
    when XNNPACK packs them; the pages then stayed counted in the process' RSS (the interpreter path,
    base int8: 107 MB of 474 after loading). A page read again later is read again from the file, so
    nothing changes but the memory; writable mappings are left alone."""
    target = str(Path(path).resolve())
    madvise = _madvise()
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return 0.0
    spanned = 0
    for line in maps:
        fields = line.split(maxsplit=5)
        if madvise is None or len(fields) < 6 or fields[5] != target or "w" in fields[1]:
            continue
        start, end = (int(n, 16) for n in fields[0].split("-"))
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            spanned += end - start
    return spanned / 2**20


@functools.lru_cache(maxsize=1)
def _madvise():
    try:
        madvise = ctypes.CDLL(None).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def reset_peak_rss() -> None:
    """Start VmHWM again from the current RSS (Linux); elsewhere the peak stays the process'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    """This process' peak resident memory: VmHWM where Linux has it (ru_maxrss survives exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_bundle(bundle) -> dict:
    """Peak RSS of a fresh process that loads `bundle` and answers MEASURED_TASK, on each runtime path
    this machine can take and the bundle runs on (the boards differ: a Pi 3/4 takes the interpreter,
    which keeps its own copy of the weights): first with an empty weight cache (a device's first start packs the
    weights, and needs more), then with the cache written (every later start). The manifest's
    `measured` entry; figures by path."""
    from edge.manifest import load_manifest
    from edge.runtime import compiled_runtime_blockers, runtimes_for

    quantization = load_manifest(bundle).quantization
    paths = [p for p in runtimes_for(quantization) if p != "compiled" or not compiled_runtime_blockers()[0]]
    peak, first_start, low = {}, {}, {}
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="florence-edge-measure-") as cache:
            first = _measure_in_fresh_process(bundle, cache, path)
            later = _measure_in_fresh_process(bundle, cache, path)
            low[path] = _measure_in_fresh_process(bundle, cache, path, low_memory=True)["peak_rss_mb"]
        peak[path], first_start[path] = later["peak_rss_mb"], first["peak_rss_mb"]
    return {"task": later["task"], "tokens": later["tokens"], "machine": later["machine"],
            "peak_rss_mb": peak, "first_start_peak_rss_mb": first_start, "low_memory_peak_rss_mb": low}


def _measure_in_fresh_process(bundle, cache: str, path: str, low_memory: bool = False) -> dict:
    env = {**os.environ, "FLORENCE_EDGE_CACHE": cache, "FLORENCE_EDGE_RUNTIME": path}
    command = [sys.executable, "-m", "edge.memory", str(bundle)] + (["--low-memory"] if low_memory else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FlorenceEdgeError(f"measuring the memory of {bundle} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_here(bundle: str, low_memory: bool) -> dict:
    """Greedy, as `live` decodes, and for as many tokens as the largest cache holds (EOS ignored): the
    most a long answer can take, whatever the weights say; two frames, as a camera gives them."""
    from edge.bench import decode_fixed
    from edge.model import Florence2
    from edge.scenes import make_scene

    model = Florence2(bundle, low_memory=low_memory)
    tokens = model.manifest.decoder_buckets()[-1][1]
    for seed in (1_000_000, 1_000_001):
        decode_fixed(model, model.encode(make_scene(seed).image), MEASURED_TASK, tokens)
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "task": MEASURED_TASK, "tokens": tokens,
            "machine": platform.machine()}


def available_mb() -> tuple[float, str] | None:
    """The memory this process could still take, MB, and what limits it: the smaller of the
    system's MemAvailable and room left under its cgroup's memory.max (a service's MemoryMax)."""
    candidates = []
    meminfo = _meminfo()
    if "MemAvailable" in meminfo:
        candidates.append((meminfo["MemAvailable"] / 1024, "available on this machine (MemAvailable)"))
    cgroup = _cgroup_room()
    if cgroup is not None:
        candidates.append((cgroup, "left under this service's memory.max"))
    return min(candidates) if candidates else None


def total_mb() -> float | None:
    total = _meminfo().get("MemTotal")
    return total / 1024 if total else None


def _meminfo() -> dict[str, int]:
    """/proc/meminfo in kB."""
    try:
        lines = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        return {}
    return {name: int(rest.split()[0]) for name, _, rest in (line.partition(":") for line in lines) if rest.strip()}


def _cgroup_room() -> float | None:
    """MB between this process' cgroup v2 memory.current and memory.max; None when unlimited."""
    try:
        entry = Path("/proc/self/cgroup").read_text().splitlines()
        path = next(line.split(":", 2)[2] for line in entry if line.startswith("0::"))
        folder = Path("/sys/fs/cgroup") / path.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        current = int((folder / "memory.current").read_text())
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return None if limit == "max" else (int(limit) - current) / 2**20


def bundle_need(manifest, path: str | None = None, low_memory: bool = False) -> float | None:
    """MB the bundle needs at its peak on runtime `path` (the largest figure if that path was not
    measured), in low-memory mode if asked (and measured); None if it was never measured."""
    measured = manifest.measured
    if measured is None:
        return None
    peaks = measured.get("low_memory_peak_rss_mb") if low_memory else None
    peaks = peaks or measured["peak_rss_mb"]
    return peaks.get(path, max(peaks.values()))


def check_fits(manifest, path: str | None = None, limit_mb: float | None = None, limit_origin: str = "",
               machine: bool = True, low_memory: bool = False) -> None:
    """Refuse (one line) a bundle whose measured peak on runtime `path` (in low-memory mode if asked)
    exceeds `limit_mb` (a configured limit) or, with `machine`, the memory this machine has left. A
    bundle converted before the measurement existed passes."""
    need = bundle_need(manifest, path, low_memory)
    if need is None:
        return
    limits = [(limit_mb, limit_origin)] if limit_mb is not None else []
    here = available_mb() if machine else None
    if here is not None:
        limits.append(here)
    for limit, origin in limits:
        if need > limit:
            on = f" on the {path} path" if path else ""
            raise FlorenceEdgeError(
                f"{manifest.root} needs about {need:.0f} MB at its peak{on} (measured by convert on "
                f"{manifest.measured['machine']}), but only {limit:.0f} MB is {origin}: choose a smaller bundle "
                "or a board with more memory")


if __name__ == "__main__":  # the fresh process of `measure_bundle`
    print(json.dumps(_measure_here(sys.argv[1], "--low-memory" in sys.argv[2:])))
