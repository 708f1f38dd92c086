"""benchmarks/outputs.py measures real work: a handover per event, the writers' JPEGs, frames and clip."""

from __future__ import annotations

from PIL import Image

from benchmarks.outputs import handover, picture, writers
from edge.live.outputs.event_files import EventFiles
from edge.live.outputs.snapshots import Snapshots


def test_the_figures_come_from_real_outputs():
    pic = picture((64, 48))
    figures = writers((64, 48), 20, pic)
    assert figures["clip_kb"] > 0 and figures["clip_seconds"] == 2.0
    assert figures["snapshot_pair_ms"] > 0 and figures["clip_encode_ms_per_frame"] > 0
    assert handover(lambda folder: [Snapshots(EventFiles(folder, 10, 1, "bench"), Image.fromarray)], 5, 1, pic) > 0
