"""A model loaded for a long run, proven first: every bundle file hashed again (a remembered
verification cannot see bit rot, which keeps a file's modification time), then the probe
(`edge.probe`) answered and compared with what the conversion recorded.

On a mismatch the weight cache is dropped and packed again and the probe runs once more; if it still
differs, the run is refused in one line naming what differs (exit 2: systemd's restart limit then
stops a broken unit rather than letting it publish garbage).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from edge import manifest as mf
from edge import probe, weight_cache
from edge.errors import FlorenceEdgeError
from edge.integrity import verify_bundle
from edge.model import Florence2
from edge.runtime import cache_folder, weight_cache_file


@dataclass
class SelfTest:
    """How the self-test went: `passed` False only when the bundle records no probe (`note` says so)."""

    passed: bool
    ms: float
    note: str


def _stderr(line: str) -> None:
    print(f"florence-edge: {line}", file=sys.stderr, flush=True)


def load_checked(bundle_dir, log=_stderr, **options) -> tuple[Florence2, SelfTest]:
    """`Florence2(bundle_dir, **options)` once its files and probe pass; else a one-line `FlorenceEdgeError`."""
    start = time.perf_counter()
    verify_bundle(mf.load_manifest(bundle_dir), cache_folder(), remembered=False)  # Florence2's check: a stat
    model = Florence2(bundle_dir, **options)
    recorded = model.manifest.raw.get("probe")
    if not recorded or recorded.get("version") != probe.VERSION:
        return model, SelfTest(False, _since(start), "this bundle records no self-test probe (converted by an "
                                                      "older florence-edge): convert it again to have one")
    problem = _difference(model, recorded)
    if problem is None:
        return model, SelfTest(True, _since(start), "the probe answered as at conversion")
    model.close()
    for role in mf.GRAPH_ROLES:
        if (cache := weight_cache_file(model.manifest.file_sha256(role))) is not None:
            weight_cache.drop(cache)
    model = Florence2(bundle_dir, **options)
    again = _difference(model, recorded)
    if again is not None:
        model.close()
        raise FlorenceEdgeError(f"self-test failed: {again}, with every bundle file intact and the weights packed "
                                "afresh: this CPU computes what the conversion's did not (florence-edge check --run "
                                "repeats it)")
    log(f"self-test: {problem}; the weight cache was dropped and packed again, and the probe passes now")
    return model, SelfTest(True, _since(start), f"repaired: {problem}; the weight cache was packed again")


def _difference(model: Florence2, recorded: dict) -> str | None:
    return probe.difference(recorded, probe.measure(model, list(recorded["tasks"]), recorded["max_new_tokens"]))


def _since(start: float) -> float:
    return round((time.perf_counter() - start) * 1e3, 1)
