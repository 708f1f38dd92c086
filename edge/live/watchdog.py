"""Pings systemd's watchdog only while the live loop makes progress.

The loop's two threads each leave a heartbeat: the capture thread for every frame read, every
attempt to reopen a lost camera and every wait for the model; the worker for every decoded token,
every finished or reused frame and every idle wait for a frame. A ping goes out only when both beat
within the last watchdog period, so an inference that never returns, a capture thread that died or
hangs in a driver, or a deadlock stops the pings, and systemd restarts the service within one to
two periods. Each ping carries STATUS= with the loop's rates and latency.
"""

from __future__ import annotations

import threading
import time

from edge.live.notify import Notifier


class Watchdog(threading.Thread):
    """Every `period`/2 s: WATCHDOG=1 and STATUS= if every heartbeat of `live` is younger than `period`."""

    def __init__(self, notifier: Notifier, live, period: float):
        super().__init__(name="florence-edge-watchdog", daemon=True)
        self.notifier, self.live, self.period = notifier, live, period
        self._stop = threading.Event()
        self.pings = 0
        self.withheld: str | None = None  # the stalled part, while pings are withheld

    def run(self) -> None:
        while not self._stop.wait(self.period / 2):
            stalled = self.stalled()
            if stalled is None:
                self.notifier.send(WATCHDOG=1, STATUS=self.live.status_line())
                self.pings += 1
            elif stalled != self.withheld:
                # said once: systemd's own line about the timeout follows in the journal
                self.live.log(f"no progress from the {stalled} for {self.period:.0f} s: watchdog pings stop")
            self.withheld = stalled

    def stalled(self) -> str | None:
        """The part of the loop that has not beaten within the period, or None."""
        now = time.monotonic()
        return next((part for part, beat in self.live.heartbeats().items() if now - beat > self.period), None)

    def stop(self) -> None:
        self._stop.set()
