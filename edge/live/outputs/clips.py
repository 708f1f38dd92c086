"""`--clips DIR`: an MP4 per tracked object and per trigger firing, from `before` seconds ahead of
its start to `after` seconds past its end.

Every frame the camera delivers (the picture the model sees, not the larger display stream) is
encoded to H.264 once, with a keyframe about every second: by picamera2's own encoder where the
source offers it (the Pi's hardware encoder; `PicameraSource.encode`), else by PyAV's libx264 on
this output's thread. The packets of the last few seconds wait in a ring, so a clip starts before
the event that opened it without keeping raw frames. A clip is muxed from its packets when its
end has passed by `after` seconds of the source's own time (so a file processed faster than real
time gives the same clips), or when it reaches `MAX_SECONDS`. Frames that find the queue full
are dropped and counted: the loop never waits for the encoder.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from edge.live.outputs.event_files import EventFiles
from edge.live.video import _av

QUEUE = 64  # frames and events waiting for the encoder
MAX_SECONDS = 300.0  # a clip that runs this long is written as it is (a trigger that stays on)
MS = Fraction(1, 1000)
STARTS = ("new", "on")
ENDS = ("end", "off")


@dataclass(frozen=True)
class Packet:
    seconds: float
    pts: int  # ms
    key: bool
    data: bytes


@dataclass
class _Clip:
    packets: list = field(default_factory=list)
    ends: float | None = None  # source seconds of the event's end


class Clips:
    name = "clips"

    def __init__(self, files: EventFiles, fps: float, before: float = 5.0, after: float = 5.0, log=print):
        self.files = files
        self.log = log
        self._failed = False
        self.fps = fps
        self.before, self.after = before, after
        self.dropped = 0
        self.by_camera = False  # packets come from the camera's encoder (`on_packet`), not frames
        self._size = None  # the video's (width, height)
        self._encoder = None
        self._last_pts = None
        self._ring: deque[Packet] = deque()
        self._open: dict[str, _Clip] = {}
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._thread = threading.Thread(target=self._run, name="florence-edge-clips", daemon=True)

    @property
    def counts(self) -> dict:
        return {**self.files.counts, "dropped": self.dropped, "open": len(self._open)}

    def annotate(self, event: dict) -> None:
        event["clip"] = f"/events/{event['id']}/clip.mp4"

    def file(self, event_id: str, name: str):
        return self.files.path(event_id, ".mp4") if name == "clip.mp4" else None

    def start(self) -> None:
        self._thread.start()

    def use_camera_encoder(self, source) -> None:
        """Take H.264 from `source.encode` (picamera2) instead of encoding frames here."""
        self.by_camera = True
        self._size = source.encode(self.on_packet, self.fps)

    def on_packet(self, data: bytes, keyframe: bool, seconds: float) -> None:
        self._put(("packet", Packet(seconds, round(seconds * 1000), keyframe, data), seconds))

    def on_frame(self, frame) -> None:
        if frame is not None and not self.by_camera:
            self._put(("frame", frame.image, frame.seconds))

    def on_event(self, event: dict, picture) -> None:
        if event["event"] in STARTS or event["event"] in ENDS:
            self._put((event["event"], event["id"], event["seconds"]))

    def _put(self, item) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write every clip still open, with what it has."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._take(*item)
            except Exception as exc:  # noqa: BLE001 - a frame the encoder refuses must not end the clips
                self.dropped += 1
                if not self._failed:
                    self._failed = True
                    self.log(f"clips: {type(exc).__name__}: {exc} (the frame is dropped, clips go on)")
        for event_id in list(self._open):
            self._write(event_id)

    def _take(self, kind: str, what, seconds: float) -> None:
        if kind == "frame":
            self._encode(what, seconds)
        elif kind == "packet":
            self._keep(what)
        elif kind in STARTS:
            self._start(what, seconds)
        elif what in self._open:
            self._open[what].ends = seconds

    def _start(self, event_id: str, seconds: float) -> None:
        keys = [i for i, p in enumerate(self._ring) if p.key and p.seconds <= seconds - self.before]
        first = keys[-1] if keys else next((i for i, p in enumerate(self._ring) if p.key), len(self._ring))
        self._open[event_id] = _Clip(list(self._ring)[first:])

    def _encode(self, picture, seconds: float) -> None:
        pts = round(seconds * 1000)
        if self._last_pts is not None and pts <= self._last_pts:
            return  # a frame at the same time as the last one: the clip would not play
        self._last_pts = pts
        av = _av()
        if self._encoder is None:
            self._encoder = self._make_encoder(av, picture.shape[1], picture.shape[0])
            self._size = (self._encoder.width, self._encoder.height)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
        frame = frame.reformat(width=self._encoder.width, height=self._encoder.height, format="yuv420p")
        frame.pts, frame.time_base = pts, MS
        for packet in self._encoder.encode(frame):
            self._keep(Packet(packet.pts / 1000, packet.pts, packet.is_keyframe, bytes(packet)))

    def _make_encoder(self, av, width: int, height: int):
        encoder = av.codec.CodecContext.create("libx264", "w")
        encoder.width, encoder.height = width // 2 * 2, height // 2 * 2  # yuv420p needs even sides
        encoder.pix_fmt, encoder.time_base = "yuv420p", MS
        encoder.gop_size = max(1, round(self.fps))  # a keyframe a second: where a clip may start
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "26"}
        return encoder

    def _keep(self, packet: Packet) -> None:
        self._ring.append(packet)
        while self._ring and self._ring[0].seconds < packet.seconds - self.before - 2.0:
            self._ring.popleft()
        for event_id, clip in list(self._open.items()):
            if clip.ends is not None and packet.seconds > clip.ends + self.after:
                self._write(event_id)  # the first packet past its end closes it
            elif clip.packets or packet.key:  # a clip starts on a keyframe: it must decode from its first frame
                clip.packets.append(packet)
                if packet.seconds - clip.packets[0].seconds >= MAX_SECONDS:
                    self._write(event_id)

    def _write(self, event_id: str) -> None:
        clip = self._open.pop(event_id)
        if clip.packets:
            self.files.write(event_id, ".mp4", lambda path: self._mux(path, event_id, clip.packets))

    def _mux(self, path: str, event_id: str, packets: list[Packet]) -> None:
        av = _av()
        with av.open(path, "w", format="mp4", options={"movflags": "faststart"}) as out:
            out.metadata["title"] = event_id
            out.metadata["comment"] = f"source seconds {packets[0].seconds:.3f} to {packets[-1].seconds:.3f}"
            stream = out.add_stream("h264", rate=max(1, round(self.fps)))
            stream.width, stream.height = self._size
            stream.time_base = MS
            start = packets[0].pts
            for p in packets:
                packet = av.Packet(p.data)
                packet.pts = packet.dts = p.pts - start
                packet.is_keyframe, packet.time_base, packet.stream = p.key, MS, stream
                out.mux(packet)
