"""What a bundle needs at its peak, measured, and the one-line refusal of a bundle too big for here.

A bundle's need is measured, not guessed: `convert` runs it in a fresh process, once with an empty
weight cache (a device's first start) and once more with it, and writes both peaks into the
manifest. `live` compares it with the memory it may use before loading anything, so a board too
small for a model gets one line saying so instead of the kernel's OOM killer.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from edge.demo.scenes import make_scene
from edge.errors import FlorenceEdgeError
from edge.fixed_decode import decode_fixed
from edge.manifest import load_manifest
from edge.memory import available_mb, peak_rss_mb
from edge.model import Florence2
from edge.runtime import compiled_runtime_blockers, runtimes_for

MEASURED_TASK = "<CAPTION>"


def measure_bundle(bundle) -> dict:
    """Peak RSS of a fresh process that loads `bundle` and answers MEASURED_TASK, on each runtime path
    this machine can take and the bundle runs on (the boards differ: a Pi 3/4 takes the interpreter,
    which keeps its own copy of the weights): first with an empty weight cache (a device's first start packs the
    weights, and needs more), then with the cache written (every later start). The manifest's
    `measured` entry; figures by path."""
    quantization = load_manifest(bundle).quantization
    paths = [p for p in runtimes_for(quantization) if p != "compiled" or not compiled_runtime_blockers()[0]]
    # The paths side by side: each process's own peak is what is read, so they do not disturb it.
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        runs = dict(zip(paths, pool.map(lambda path: _measure_path(bundle, path), paths)))
    later = next(iter(runs.values()))[1]
    return {"task": later["task"], "tokens": later["tokens"], "machine": later["machine"],
            "peak_rss_mb": {p: r[1]["peak_rss_mb"] for p, r in runs.items()},
            "first_start_peak_rss_mb": {p: r[0]["peak_rss_mb"] for p, r in runs.items()},
            "low_memory_peak_rss_mb": {p: r[2]["peak_rss_mb"] for p, r in runs.items()}}


def _measure_path(bundle, path: str) -> tuple[dict, dict, dict]:
    """A first start (empty weight cache), a later one and a low-memory one on runtime path `path`.
    The interpreter path keeps no weight cache, so there every start is a first start: measured once."""
    with tempfile.TemporaryDirectory(prefix="florence-edge-measure-") as cache:
        first = _measure_in_fresh_process(bundle, cache, path)
        later = _measure_in_fresh_process(bundle, cache, path) if path == "compiled" else first
        return first, later, _measure_in_fresh_process(bundle, cache, path, low_memory=True)


def _measure_in_fresh_process(bundle, cache: str, path: str, low_memory: bool = False) -> dict:
    env = {**os.environ, "FLORENCE_EDGE_CACHE": cache, "FLORENCE_EDGE_RUNTIME": path}
    command = [sys.executable, "-m", "edge.bundle_memory", str(bundle)] + (["--low-memory"] if low_memory else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FlorenceEdgeError(f"measuring the memory of {bundle} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _measure_here(bundle: str, low_memory: bool) -> dict:
    """Greedy, as `live` decodes, and for as many tokens as the largest cache holds (EOS ignored): the
    most a long answer can take, whatever the weights say; then a second frame, as a camera gives
    them. The second frame's own peak is its vision pass (base: 31 MB more, on both paths); decoding
    it as far as the first answer moved the peak by under 1 MB, so it decodes one cache's worth."""
    model = Florence2(bundle, low_memory=low_memory)
    buckets = model.manifest.decoder_buckets()
    for seed, tokens in ((1_000_000, buckets[-1][1]), (1_000_001, buckets[0][1])):
        decode_fixed(model, model.encode(make_scene(seed).image), MEASURED_TASK, tokens)
    return {"peak_rss_mb": round(peak_rss_mb(), 1), "task": MEASURED_TASK, "tokens": buckets[-1][1],
            "machine": platform.machine()}


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
