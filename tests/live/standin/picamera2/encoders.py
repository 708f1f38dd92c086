"""picamera2.encoders' `H264Encoder(bitrate=, repeat=, iperiod=)`: here libx264 through PyAV, with the
Pi's hardware encoder's output form (Annex B, SPS/PPS repeated on each keyframe when `repeat`)."""

from __future__ import annotations

from fractions import Fraction

import av


class H264Encoder:
    def __init__(self, bitrate=None, repeat=False, iperiod=30, **options):
        self.bitrate, self.repeat, self.iperiod = bitrate, repeat, iperiod
        self.output = None
        self._context = None

    def encode_yuv420(self, planes, size, timestamp_us: int) -> None:
        """One frame of the stream it encodes (what picamera2 does in its encoder thread)."""
        if self._context is None:
            self._context = av.codec.CodecContext.create("libx264", "w")
            self._context.width, self._context.height = size
            self._context.pix_fmt, self._context.time_base = "yuv420p", Fraction(1, 1_000_000)
            self._context.gop_size = self.iperiod
            self._context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = timestamp_us
        for packet in self._context.encode(frame):
            self.output.outputframe(bytes(packet), packet.is_keyframe, packet.pts)
