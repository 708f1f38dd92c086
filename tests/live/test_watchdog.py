"""systemd's watchdog and notify messages from a real `live` run, and the pings stopping when the
loop stops making progress: an inference that never returns, a capture thread stuck in a driver."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.demo.scenes import make_scene
from edge.live import Live
from edge.live.frames import Source
from edge.live.notify import Notifier
from edge.live.sources import ScenesSource
from edge.live.watchdog import Watchdog
from edge.model import Florence2

ROOT = Path(__file__).resolve().parents[2]
PERIOD = 0.8  # s: the test's WatchdogSec


class Listener:
    """A fake NOTIFY_SOCKET: collects (time, {key: value}) for every datagram."""

    def __init__(self, path: Path):
        self.address = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict]] = []

    def collect(self, seconds: float, until=None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (until and until()):
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), dict(line.split("=", 1) for line in data.splitlines())))

    def times(self, key: str) -> list[float]:
        return [t for t, fields in self.messages if key in fields]


@pytest.fixture
def listener(tmp_path):
    return Listener(tmp_path / "notify")


@pytest.fixture(scope="module")
def busy_images(tmp_path_factory):
    """Stills for `--every-frame --loop`: the model is never idle, so a signal lands mid-inference."""
    folder = tmp_path_factory.mktemp("busy")
    for seed in range(4):
        make_scene(500 + seed).image.save(folder / f"{seed}.png")
    return folder


def test_ready_then_pings_then_stopping_and_a_clean_exit_on_sigterm(demo_int8_bundle, busy_images, listener):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_SOCKET": listener.address,
           "WATCHDOG_USEC": str(int(PERIOD * 1e6))}
    process = subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "live", "-m", demo_int8_bundle[0], "--source", str(busy_images),
         "-t", "OCR_WITH_REGION", "-t", "CAPTION", "--every-frame", "--loop", "--change-threshold", "0",
         "--no-print-results"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    listener.collect(60, until=lambda: len(listener.times("WATCHDOG")) >= 4)
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    listener.collect(30, until=lambda: process.poll() is not None and listener.times("STOPPING"))
    out, err = process.communicate(timeout=30)
    stopped = time.monotonic() - sent
    assert process.returncode == 0, err[-2000:]
    assert "Traceback" not in err
    assert stopped < 10, f"took {stopped:.1f} s to stop (the unit allows TimeoutStopSec=30)"
    ready, pings, stopping = listener.times("READY"), listener.times("WATCHDOG"), listener.times("STOPPING")
    assert len(ready) == 1 and len(pings) >= 4 and len(stopping) == 1
    assert ready[0] < pings[0] and pings[-1] < stopping[0], "READY, then WATCHDOG pings, then STOPPING"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < PERIOD, f"pings {gaps} must come within the period while the loop progresses"
    statuses = [fields["STATUS"] for _, fields in listener.messages if "WATCHDOG" in fields]
    assert all("frames/s" in s and "latency" in s for s in statuses)
    assert '"inferred"' in err.splitlines()[-1], "the loop's figures are printed on the way out"


class _Hanging:
    """Wraps a model's `stream` so that, once `hang` is set, the next token never comes until `release`."""

    def __init__(self, model: Florence2):
        self.stream = model.stream
        self.hang, self.release, self.hanging = threading.Event(), threading.Event(), threading.Event()
        model.stream = self

    def __call__(self, *args, **kwargs):
        for event in self.stream(*args, **kwargs):
            if self.hang.is_set() and not self.release.is_set():
                self.hanging.set()
                self.release.wait()
            yield event


class _StuckCamera(Source):
    """A live camera whose read() blocks for good once `stuck` is set (a wedged driver)."""

    name, live = "stuck camera", True

    def __init__(self):
        self.scenes = ScenesSource(7, fps=20)
        self.stuck, self.release = threading.Event(), threading.Event()

    def read(self):
        if self.stuck.is_set():
            self.release.wait()
        return self.scenes.read()


def _run_in_background(live: Live) -> threading.Thread:
    thread = threading.Thread(target=lambda: [None for _ in live], daemon=True)
    thread.start()
    return thread


def _watch(live: Live, listener: Listener) -> tuple[Watchdog, list[str]]:
    """A watchdog pinging `listener`, and the lines the loop logs."""
    lines = []
    live.log = lines.append
    watchdog = Watchdog(Notifier(listener.address), live, PERIOD)
    watchdog.start()
    return watchdog, lines


def test_an_inference_that_never_returns_stops_the_pings(demo_int8_bundle, listener):
    model = Florence2(demo_int8_bundle[0], num_threads=1)
    hanging = _Hanging(model)
    live = Live(model, ScenesSource(3, fps=20), ["OD"], change_threshold=0)
    thread = _run_in_background(live)
    watchdog, lines = _watch(live, listener)
    try:
        listener.collect(3 * PERIOD)
        assert len(listener.times("WATCHDOG")) >= 4, "pings while the loop progresses"
        hanging.hang.set()
        assert hanging.hanging.wait(10)
        stalled_at = time.monotonic()
        listener.collect(4 * PERIOD)
        late = [t for t in listener.times("WATCHDOG") if t > stalled_at + PERIOD]
        assert not late, "no ping once inference has made no progress for a whole period"
        assert watchdog.withheld == "inference"
        assert any("no progress from the inference" in line for line in lines)
        hanging.release.set()
        resumed_at = time.monotonic()
        listener.collect(3 * PERIOD)
        assert [t for t in listener.times("WATCHDOG") if t > resumed_at], "pings resume with progress"
    finally:
        hanging.release.set()
        watchdog.stop()
        live.stop()
        thread.join(10)


def test_a_stuck_capture_thread_stops_the_pings(demo_int8_bundle, listener):
    camera = _StuckCamera()
    live = Live(Florence2(demo_int8_bundle[0], num_threads=1), camera, ["OD"], change_threshold=0)
    thread = _run_in_background(live)
    watchdog, lines = _watch(live, listener)
    try:
        listener.collect(3 * PERIOD)
        assert len(listener.times("WATCHDOG")) >= 4
        camera.stuck.set()
        stalled_at = time.monotonic()
        listener.collect(4 * PERIOD)
        assert not [t for t in listener.times("WATCHDOG") if t > stalled_at + 1.5 * PERIOD]
        assert watchdog.withheld == "capture thread"
    finally:
        camera.release.set()
        watchdog.stop()
        live.stop()
        thread.join(10)
