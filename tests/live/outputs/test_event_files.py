"""The folder snapshots and clips are kept in: whole files only, a size and an age cap, a failing
write said once and recovered from."""

from __future__ import annotations

import os
import time

import pytest

from edge.errors import FlorenceEdgeError
from edge.live.outputs.event_files import EventFiles, checked_folder

IDS = [f"1796175253.{n:06d}-abcdef" for n in range(6)]


def fill(data: bytes):
    def write(path):
        with open(path, "wb") as out:
            out.write(data)
    return write


def test_the_oldest_go_first_past_the_size_cap_and_any_past_the_age_cap(tmp_path):
    files = EventFiles(tmp_path, max_mb=0.0035, max_days=1, what="clips")
    for n, event_id in enumerate(IDS[:5]):
        assert files.write(event_id, ".mp4", fill(b"x" * 1000))
        os.utime(tmp_path / f"{event_id}.mp4", (time.time() - 100 + n, time.time() - 100 + n))
    files.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.mp4" for i in IDS[2:5]]
    old = time.time() - 2 * 86400
    os.utime(tmp_path / f"{IDS[2]}.mp4", (old, old))
    files.write(IDS[5], ".mp4", fill(b"y"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.mp4" for i in IDS[3:6]]
    assert files.counts == {"written": 6, "failed": 0, "removed": 3}


def test_a_failing_write_leaves_nothing_torn_and_is_said_once(tmp_path):
    said = []
    files = EventFiles(tmp_path, 100, 1, "snapshots", said.append)

    def breaks(path):
        with open(path, "wb") as out:
            out.write(b"half a pic")
        raise OSError(28, "No space left on device")
    assert not files.write(IDS[0], ".jpg", breaks)
    assert not files.write(IDS[1], ".jpg", breaks)
    assert list(tmp_path.iterdir()) == []
    assert files.write(IDS[2], ".jpg", fill(b"a whole picture"))
    assert said == [f"snapshots: cannot write to {tmp_path} (No space left on device); the loop goes on without "
                    "them until it can", f"snapshots: writing to {tmp_path} again"]
    assert files.counts["failed"] == 2


def test_only_event_ids_name_files(tmp_path):
    files = EventFiles(tmp_path, 100, 1, "clips")
    (tmp_path.parent / "secret.mp4").write_bytes(b"not yours")
    assert files.path("../secret", ".mp4") is None and files.path(IDS[0], ".mp4") is None
    files.write(IDS[0], ".mp4", fill(b"x"))
    assert files.path(IDS[0], ".mp4") == tmp_path / f"{IDS[0]}.mp4"


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("the user's")
    with pytest.raises(FlorenceEdgeError, match="snapshots .*a-file/snaps: cannot write there"):
        checked_folder(str(tmp_path / "a-file" / "snaps"), "snapshots")
    assert checked_folder(str(tmp_path / "new" / "snaps"), "snapshots").is_dir()


WRITER = """
import sys, time
from pathlib import Path
from edge.live.outputs.event_files import EventFiles

def slow(path):
    with open(path, "wb") as out:
        out.write(b"half a picture")
        out.flush()
        print("writing", flush=True)
        time.sleep(60)
        out.write(b" and the rest")

EventFiles(Path(sys.argv[1]), 100, 1, "snapshots").write(sys.argv[2], ".jpg", slow)
"""


def test_a_writer_killed_mid_write_leaves_nothing_a_reader_takes_and_its_partial_goes_next_time(tmp_path):
    import signal
    import subprocess
    import sys

    from expect import ROOT

    (tmp_path / f"{IDS[1]}.jpg").write_bytes(b"an earlier event's picture")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), IDS[0]], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert writer.stdout.readline() == "writing\n"
    writer.send_signal(signal.SIGKILL)  # as a power cut stops it
    writer.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 2 and left[0].startswith(f".{IDS[0]}.") and left[1] == f"{IDS[1]}.jpg"
    files = EventFiles(tmp_path, 100, 1, "snapshots")
    assert files.path(IDS[0], ".jpg") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{IDS[1]}.jpg"]


def test_a_full_card_is_said_once_and_writing_resumes_when_space_returns(small_card):
    said = []
    files = EventFiles(small_card, 100, 1, "snapshots", said.append)
    filler = small_card / "someone-elses-file"
    with open(filler, "wb") as out:
        with pytest.raises(OSError):
            out.write(os.urandom(1 << 20))
            out.flush()
    picture = fill(os.urandom(64 << 10))
    assert not files.write(IDS[0], ".jpg", picture) and not files.write(IDS[1], ".jpg", picture)
    assert sorted(p.name for p in small_card.iterdir()) == ["someone-elses-file"]
    filler.unlink()
    assert files.write(IDS[2], ".jpg", picture)
    assert said == [f"snapshots: cannot write to {small_card} (No space left on device); the loop goes on without "
                    "them until it can", f"snapshots: writing to {small_card} again"]
    assert (small_card / f"{IDS[2]}.jpg").stat().st_size == 64 << 10
