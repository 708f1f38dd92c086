"""A video written here from held-out scenes, each held for a few frames, with its ground truth."""

from __future__ import annotations

import pytest

VIDEO_SIZE = (384, 384)  # the scenes are 256 px: results must come in the video's own pixels
HOLD = 3
SEEDS = (1_000_011, 1_000_012, 1_000_013, 1_000_014)


def write_video(path, seeds, hold: int, size=VIDEO_SIZE, fps: int = 10) -> None:
    import av

    from edge.scenes import make_scene

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for seed in seeds:
            image = make_scene(seed).image.resize(size)
            for _ in range(hold):
                for packet in stream.encode(av.VideoFrame.from_image(image)):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="session")
def scene_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "scenes.mp4"
    write_video(path, SEEDS, HOLD)
    return path
