"""A video written here from held-out scenes, each held for a few frames, with its ground truth; and a
real MQTT broker (Debian's mosquitto) on a free loopback port with a client that records what it
publishes; a real network camera (GStreamer's RTSP server) on another."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

VIDEO_SIZE = (384, 384)  # the scenes are 256 px: results must come in the video's own pixels
HOLD = 3
SEEDS = (1_000_011, 1_000_012, 1_000_013, 1_000_014)


def write_video(path, seeds, hold: int, size=VIDEO_SIZE, fps: int = 10) -> None:
    import av

    from edge.demo.scenes import make_scene

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
def walking_clip(tmp_path_factory):
    """A held-out clip for events: a red square that walks in at frame 2 and leaves at frame 10, and a
    blue circle that stays (16 frames at `CLIP_FPS`)."""
    from benchmarks.events import write_clip
    from edge.demo.scenes import Clip, ClipObject, make_clip

    base = make_clip(4_200_000, 1)
    objects = [ClipObject(0, "square", "red", 64.0, 2, 10, (16.0, 16.0), (1, 0)),
               ClipObject(1, "circle", "blue", 64.0, 0, 16, (96.0, 144.0), (0, 0))]
    return write_clip(Clip(4_200_000, 16, objects, base.background), tmp_path_factory.mktemp("clip") / "walk.mp4")


@pytest.fixture(scope="session")
def scene_video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "scenes.mp4"
    write_video(path, SEEDS, HOLD)
    return path


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
DEBIAN_PYTHON = "/usr/bin/python3"  # the python3 Debian's python3-gi (GStreamer's bindings) is built for


class Daemon:
    """A real server in its own process on a free loopback port; it can be stopped and started again
    on the same port (a broker or camera going away and coming back)."""

    name = "the server"

    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Broker(Daemon):
    name = "mosquitto"

    def __init__(self, folder):
        super().__init__()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.start()

    def command(self) -> list[str]:
        return [MOSQUITTO, "-c", str(self.config)]


class RtspCamera(Daemon):
    """GStreamer's RTSP server sending H.264 of a moving picture at 10 fps, as an IP camera does, to
    `user` with `password` only; `url` names the user, not the password."""

    name = "the RTSP server"
    user, password = "viewer", "s3cret"

    def __init__(self):
        super().__init__()
        self.url = f"rtsp://{self.user}@127.0.0.1:{self.port}/cam"
        self.start()

    def command(self) -> list[str]:
        script = Path(__file__).with_name("rtsp_camera.py")
        return [DEBIAN_PYTHON, str(script), str(self.port), self.user, self.password]


class Recorder:
    """Subscribes to everything; `messages` holds (topic, payload bytes, retain) as they come."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("#")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def wait(self, predicate, timeout: float = 60.0, what: str = "a message", since: int = 0):
        """The messages (from the `since`-th on) that satisfy `predicate(topic, payload, retain)`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages[since:] if predicate(*m)]
            if found:
                return found
            time.sleep(0.1)
        with self.lock:
            topics = sorted({m[0] for m in self.messages})
        raise AssertionError(f"no {what} within {timeout} s; topics seen: {topics}")

    def publish(self, topic: str, payload: str) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def broker(tmp_path):
    running = Broker(tmp_path)
    yield running
    running.stop()


@pytest.fixture
def rtsp_camera():
    running = RtspCamera()
    yield running
    running.stop()


@pytest.fixture
def subscribe(broker):
    """Makes clients that record everything from the moment they subscribe (retained messages first)."""
    made = []

    def make() -> Recorder:
        made.append(Recorder(broker.port))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


@pytest.fixture
def listener(subscribe):
    return subscribe()


@pytest.fixture
def small_card(tmp_path):
    """A real 256 kB filesystem, to fill up (tmpfs; the tests run as root, as `make test` does)."""
    mount = tmp_path / "card"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)
