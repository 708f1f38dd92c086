"""Memory (`edge.memory`, `edge.bundle_memory`): the process peak, a bundle's measured need, the one-line
refusal of one too big, and file pages handed back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from expect import SAMPLE

from edge import bundle_memory, memory
from edge.errors import FlorenceEdgeError
from edge.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux only")
def test_peak_rss_starts_again_from_the_current_rss():
    # In a fresh process: in this one, earlier tests leave the allocator holding freed memory,
    # which a new block may reuse without raising the peak.
    code = ("import numpy as np; from edge.memory import peak_rss_mb, reset_peak_rss\n"
            "block = np.ones(200 * 2**20 // 8); before = peak_rss_mb(); del block; reset_peak_rss()\n"
            "print(before, peak_rss_mb())")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before, after = map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                              check=True, env=env).stdout.split())
    assert after < before - 150


def test_convert_measures_the_bundle_it_writes(demo_int8_bundle):
    measured = load_manifest(demo_int8_bundle[0]).measured
    assert measured["task"] == bundle_memory.MEASURED_TASK and measured["machine"]
    paths = {"compiled", "interpreter"}
    assert set(measured["peak_rss_mb"]) == set(measured["first_start_peak_rss_mb"]) == paths
    assert set(measured["low_memory_peak_rss_mb"]) == paths
    assert all(50 < mb < 2000 for mb in measured["peak_rss_mb"].values())
    assert measured["tokens"] == load_manifest(demo_int8_bundle[0]).decoder_buckets()[-1][1]


def test_a_measurement_is_a_fresh_process_peak(demo_int8_bundle):
    again = bundle_memory.measure_bundle(demo_int8_bundle[0])
    recorded = load_manifest(demo_int8_bundle[0]).measured
    # the same work measured twice: within allocator noise of each other
    for path, mb in recorded["peak_rss_mb"].items():
        assert abs(again["peak_rss_mb"][path] - mb) < 0.25 * mb


def test_a_bundle_over_the_limit_is_refused_with_its_figure(demo_copy):
    manifest = load_manifest(demo_copy)
    need = manifest.measured["peak_rss_mb"]["interpreter"]
    bundle_memory.check_fits(manifest, "interpreter", need + 1, "allowed", machine=False)
    with pytest.raises(FlorenceEdgeError, match=rf"needs about {need:.0f} MB at its peak on the interpreter path "
                                                r".* only 10 MB is allowed"):
        bundle_memory.check_fits(manifest, "interpreter", 10, "allowed", machine=False)


def test_an_unmeasured_path_counts_the_largest_figure(demo_copy):
    raw = json.loads((demo_copy / "manifest.json").read_text())
    raw["measured"]["peak_rss_mb"] = {"compiled": 100.0, "interpreter": 300.0}
    (demo_copy / "manifest.json").write_text(json.dumps(raw))
    assert bundle_memory.bundle_need(load_manifest(demo_copy), "compiled") == 100.0
    assert bundle_memory.bundle_need(load_manifest(demo_copy), "tflite-runtime") == 300.0


def test_low_memory_mode_is_checked_against_its_own_figure(demo_copy):
    raw = json.loads((demo_copy / "manifest.json").read_text())
    raw["measured"]["peak_rss_mb"] = {"compiled": 700.0}
    raw["measured"]["low_memory_peak_rss_mb"] = {"compiled": 380.0}
    (demo_copy / "manifest.json").write_text(json.dumps(raw))
    manifest = load_manifest(demo_copy)
    bundle_memory.check_fits(manifest, "compiled", 400, "allowed", machine=False, low_memory=True)
    with pytest.raises(FlorenceEdgeError, match="needs about 700 MB"):
        bundle_memory.check_fits(manifest, "compiled", 400, "allowed", machine=False)


def test_more_than_this_machine_has_is_refused(demo_copy):
    raw = json.loads((demo_copy / "manifest.json").read_text())
    raw["measured"]["peak_rss_mb"] = {"compiled": memory.available_mb()[0] * 4}
    (demo_copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(FlorenceEdgeError, match="available on this machine|left under this service"):
        bundle_memory.check_fits(load_manifest(demo_copy))


def test_a_bundle_measured_before_measurement_existed_passes(demo_copy):
    raw = json.loads((demo_copy / "manifest.json").read_text())
    del raw["measured"]
    (demo_copy / "manifest.json").write_text(json.dumps(raw))
    bundle_memory.check_fits(load_manifest(demo_copy), 1)


def test_a_malformed_measurement_is_a_corrupt_manifest(demo_copy):
    raw = json.loads((demo_copy / "manifest.json").read_text())
    raw["measured"]["peak_rss_mb"] = {"compiled": "a lot"}
    (demo_copy / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(FlorenceEdgeError, match="measured.peak_rss_mb.compiled must be"):
        load_manifest(demo_copy)


def _mapped_rss_kb(path) -> int:
    """Resident kB of this process' mappings of `path`, from /proc/self/smaps."""
    target, total, inside = str(Path(path).resolve()), 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5:  # a mapping's header line
            inside = fields[-1] == target
        elif inside and fields[0] == "Rss:":
            total += int(fields[1])
    return total


def test_dropped_file_pages_leave_the_rss_and_read_back_the_same(tmp_path):
    import mmap

    path = tmp_path / "weights.bin"
    data = os.urandom(8 * 2**20)
    path.write_bytes(data)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert bytes(mapped) == data
        before = _mapped_rss_kb(path)
        assert before >= 8 * 1024 - 64
        assert memory.drop_file_pages(path) >= 8
        assert _mapped_rss_kb(path) < before / 8
        assert bytes(mapped) == data  # read again from the file


def test_a_loaded_graph_no_longer_holds_its_files_pages(demo_int8_bundle):
    from edge.model import Florence2

    model = Florence2(demo_int8_bundle[0], runtime="interpreter")
    model.run(SAMPLE, "<CAPTION>", max_new_tokens=8)
    for name in ("vision.tflite", "encoder.tflite"):  # XNNPACK packed them; the decoder's built-in kernels read it
        file_kb = (demo_int8_bundle[0] / name).stat().st_size / 1024
        assert _mapped_rss_kb(demo_int8_bundle[0] / name) < file_kb / 4
    model.close()
