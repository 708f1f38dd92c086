"""A hot or under-powered Raspberry Pi: the firmware's throttled flags in words, and what they cost
the loop in inferred frames a second.

The flags are what `vcgencmd get_throttled` prints (`throttled=0x50005`) and what the firmware
driver's sysfs file holds (`50005`): bits 0-3 say what holds now (under-voltage, ARM frequency
capped, throttled, soft temperature limit), bits 16-19 the same since boot. Elsewhere there are
no flags, and nothing is reported. `$FLORENCE_EDGE_THROTTLED` names another file of that form.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

SYSFS = "/sys/devices/platform/soc/soc:firmware/get_throttled"
KINDS = ("under-voltage", "frequency capped", "throttled", "soft temperature limit")
PERIOD = 2.0  # s between reads: the firmware updates the flags about as often


def read_flags() -> int | None:
    """The flags now, from the sysfs file, else `vcgencmd`; None where neither answers."""
    try:
        with open(os.environ.get("FLORENCE_EDGE_THROTTLED", SYSFS)) as f:
            return int(f.read().strip(), 16)
    except (OSError, ValueError):
        pass
    if shutil.which("vcgencmd") is None:
        return None
    try:
        said = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5).stdout
        return int(said.strip().partition("=")[2], 16)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def describe(flags: int) -> dict:
    """{"now": [...], "since_boot": [...]}: the kinds of throttling that hold now, and that happened."""
    return {"now": [k for i, k in enumerate(KINDS) if flags >> i & 1],
            "since_boot": [k for i, k in enumerate(KINDS) if flags >> (16 + i) & 1]}


class ThrottleWatch:
    """Inferred frames and seconds of the loop, counted apart while the board is throttled and while it
    is not (a kind of bits 0-3 holding): the frame rate throttling costs, on this board, measured."""

    def __init__(self, read=read_flags):
        self.read = read
        self.flags = read()
        self._read_at = self._last = time.monotonic()
        self._inferred = 0
        self.seconds = {True: 0.0, False: 0.0}
        self.inferred = {True: 0, False: 0}

    @property
    def now(self) -> bool:
        return bool(self.flags is not None and self.flags & 0xF)

    def tick(self, inferred: int) -> None:
        """Called with the loop's inferred count: what passed since the last call goes to the state seen then."""
        if self.flags is None:
            return
        clock = time.monotonic()
        state = self.now
        self.seconds[state] += clock - self._last
        self.inferred[state] += inferred - self._inferred
        self._last, self._inferred = clock, inferred
        if clock - self._read_at >= PERIOD:
            self.flags, self._read_at = self.read(), clock

    def summary(self) -> dict | None:
        """For /stats: the flags in words, seconds throttled and the inferred rate either way (None: no flags)."""
        if self.flags is None:
            return None
        rate = {state: round(self.inferred[state] / s, 3) if (s := self.seconds[state]) else None
                for state in (True, False)}
        return {**describe(self.flags), "seconds_throttled": round(self.seconds[True], 1),
                "inferred_per_s_throttled": rate[True], "inferred_per_s_unthrottled": rate[False]}

    def status(self) -> str:
        """For the service's status line: '' unless throttling holds or happened."""
        summary = self.summary()
        if not summary or not (summary["now"] or summary["seconds_throttled"]):
            return ""
        rates = summary["inferred_per_s_throttled"], summary["inferred_per_s_unthrottled"]
        cost = f" ({rates[0]} inferred/s throttled, {rates[1]} not)" if None not in rates else ""
        kinds = ", ".join(summary["now"] or summary["since_boot"])
        return f" · {'throttled now' if summary['now'] else 'was throttled'}: {kinds}{cost}"
