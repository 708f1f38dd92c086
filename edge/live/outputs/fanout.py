"""Every output of a `live` run behind one door: the loop hands each event, result, figure and
frame over once, and each output takes what it has a use for (an output is any object with some
of `annotate`, `on_event`, `on_result`, `on_stats`, `on_frame`, `file`, `start`, `close`, plus
`name` and `counts`). None of them may block: each queues and works on its own thread."""

from __future__ import annotations

HOOKS = ("annotate", "on_event", "on_result", "on_stats", "on_frame", "file", "start", "close")


class Outputs:
    def __init__(self, outputs: list):
        self.outputs = outputs
        self._hooks = {hook: [getattr(o, hook) for o in outputs if hasattr(o, hook)] for hook in HOOKS}

    def __bool__(self) -> bool:
        return bool(self.outputs)

    def start(self) -> None:
        for start in self._hooks["start"]:
            start()

    def close(self) -> None:
        for close in self._hooks["close"]:
            close()

    def event(self, event: dict, picture) -> dict:
        """`event` (its JSON object) named with the files kept for it, then handed to every output."""
        for annotate in self._hooks["annotate"]:
            annotate(event)
        for on_event in self._hooks["on_event"]:
            on_event(event, picture)
        return event

    def result(self, result: dict) -> None:
        for on_result in self._hooks["on_result"]:
            on_result(result)

    def stats(self, stats: dict) -> None:
        for on_stats in self._hooks["on_stats"]:
            on_stats(stats)

    def frame(self, frame) -> None:
        for on_frame in self._hooks["on_frame"]:
            on_frame(frame)

    def counts(self) -> dict:
        """What each output sent, retried, dropped, wrote: for /stats and .../stats."""
        return {o.name: dict(o.counts) for o in self.outputs}

    def file(self, event_id: str, name: str):
        """The file an output keeps for an event (`snapshot.jpg`, `snapshot-clean.jpg`, `clip.mp4`), or None."""
        for find in self._hooks["file"]:
            path = find(event_id, name)
            if path is not None:
                return path
        return None
