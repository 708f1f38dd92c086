"""picamera2.outputs' `Output`: encoded frames arrive at `outputframe(frame, keyframe, timestamp)` (us)."""


class Output:
    def outputframe(self, frame, keyframe=True, timestamp=None, packet=None, audio=False):
        pass
