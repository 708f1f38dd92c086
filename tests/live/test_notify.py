"""The notify protocol as systemd reads it: datagrams of KEY=VALUE lines, to a path or an abstract socket."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from edge.live.notify import Notifier, watchdog_seconds


def receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + address[1:] if address.startswith("@") else address)
    sock.settimeout(2)
    return sock


@pytest.mark.parametrize("abstract", [False, True])
def test_fields_arrive_as_one_datagram(tmp_path, abstract):
    address = f"@florence-edge-test-{uuid.uuid4().hex}" if abstract else str(tmp_path / "notify")
    sock = receiver(address)
    notifier = Notifier(address)
    assert notifier.send(READY=1, STATUS="two\nlines")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=two lines"


def test_without_a_socket_nothing_is_sent(tmp_path):
    assert not Notifier(None).send(READY=1)
    gone = Notifier(str(tmp_path / "nobody-listens"))
    assert gone.send(WATCHDOG=1) is False  # the manager went away: the service keeps running


@pytest.mark.parametrize("usec, pid, expected", [
    ("30000000", None, 30.0), ("30000000", "self", 30.0), ("30000000", "1", None), ("0", None, None),
    (None, None, None), ("soon", None, None),
])
def test_watchdog_period_is_for_this_process_only(monkeypatch, usec, pid, expected):
    for key, value in (("WATCHDOG_USEC", usec), ("WATCHDOG_PID", str(os.getpid()) if pid == "self" else pid)):
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    assert watchdog_seconds() == expected
