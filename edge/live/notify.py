"""systemd's notify protocol: newline-separated KEY=VALUE datagrams to $NOTIFY_SOCKET.

A path names a Unix datagram socket; a leading "@" names one in the abstract namespace. Nothing
here needs libsystemd. Outside a `Type=notify` service there is no socket and every call is a no-op.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends to `address` (a socket path, "@name"; None: do nothing). A send that fails (the manager
    went away) is dropped: the service must keep running, and systemd notices silence on its own."""

    def __init__(self, address: str | None):
        self.address = address
        self._socket = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._target = "\0" + address[1:] if address.startswith("@") else address

    @classmethod
    def from_environment(cls) -> Notifier:
        return cls(os.environ.get("NOTIFY_SOCKET"))

    @property
    def active(self) -> bool:
        return self._socket is not None

    def send(self, **fields) -> bool:
        """send(READY=1, STATUS="...") -> one datagram; False when nothing was sent."""
        if self._socket is None:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            self._socket.sendto(message.encode(), self._target)
        except OSError:
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _one_line(value) -> str:
    # a newline would start another KEY=VALUE pair
    return str(value).replace("\n", " ")


def watchdog_seconds() -> float | None:
    """systemd's WatchdogSec for this process (from WATCHDOG_USEC, if WATCHDOG_PID names it or is unset)."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (a parent that ran this one)
    return int(usec) / 1e6
