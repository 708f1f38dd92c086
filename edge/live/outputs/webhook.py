"""`--webhook URL` and `[[webhooks]]`: a JSON POST per event.

With a secret, the body is signed: `X-Florence-Edge-Signature: sha256=<hex HMAC-SHA256 of the body>`
(GitHub's form, so receivers written for it work). Each webhook has its own thread and a bounded
queue: a receiver that hangs holds up only its own posts, up to `timeout` seconds each. Refused
connections, timeouts, 429 and 5xx answers are retried `retries` times with doubling pauses; other
answers are final. What does not fit in the queue is dropped, counted, and said once until posts
flow again.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edge.errors import FlorenceEdgeError
from edge.files import credential
from edge.live.events.stream import TYPES

QUEUE = 256
SIGNATURE = "X-Florence-Edge-Signature"
FIRST_PAUSE = 1.0  # s before the first retry; doubled for each next one
LAST_WORDS = 5.0  # s a closing webhook may spend on what is queued


@dataclass(frozen=True)
class WebhookSettings:
    url: str
    events: tuple[str, ...] = TYPES
    secret: str | None = None
    timeout: float = 5.0
    retries: int = 3


KEYS = {"url", "events", "secret", "secret_file", "timeout", "retries"}


def webhook_settings(table: dict, where: str = "[[webhooks]]") -> WebhookSettings:
    """A checked `[[webhooks]]` table (or `--webhook URL`): one-line errors for bad input."""
    unknown = set(table) - KEYS
    if unknown:
        raise FlorenceEdgeError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(KEYS))}")
    url = table.get("url")
    _check_url(url, where)
    events = table.get("events", list(TYPES))
    if not isinstance(events, list) or not events or not set(events) <= set(TYPES):
        raise FlorenceEdgeError(f"{where} events: a list of {', '.join(TYPES)}, got {events!r}")
    timeout, retries = table.get("timeout", 5.0), table.get("retries", 3)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 120:
        raise FlorenceEdgeError(f"{where} timeout: seconds above 0 and at most 120, got {timeout!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
        raise FlorenceEdgeError(f"{where} retries: a whole number from 0 to 10, got {retries!r}")
    return WebhookSettings(url, tuple(events), _secret(table, where), float(timeout), retries)


def _check_url(url, where: str) -> None:
    parts = urlsplit(url if isinstance(url, str) else "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FlorenceEdgeError(f"{where}: a webhook is an http:// or https:// address, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except ValueError:
        raise FlorenceEdgeError(f"{where}: bad port in {url!r}") from None
    except OSError:
        raise FlorenceEdgeError(f"{where}: the host {parts.hostname!r} does not resolve") from None


def _secret(table: dict, where: str) -> str | None:
    if "secret_file" not in table:
        secret = table.get("secret")
        if secret is not None and (not isinstance(secret, str) or not secret):
            raise FlorenceEdgeError(f"{where} secret: text")
        return secret
    try:
        return Path(credential(table["secret_file"])).read_text().strip() or None
    except (OSError, TypeError) as exc:
        raise FlorenceEdgeError(f"{where} secret_file {table['secret_file']}: "
                                f"{getattr(exc, 'strerror', None) or 'cannot read it'}") from None


def signature(secret: str, body: bytes) -> str:
    """The header's value for `body`: what a receiver computes to check it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Webhook:
    """Posts events to one URL."""

    def __init__(self, settings: WebhookSettings, log=print):
        self.settings = settings
        self.name = f"webhook {urlsplit(settings.url).hostname}"
        self.log = log
        self.counts = {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
        self._overflowing = False
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._closing = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(target=self._run, name="florence-edge-webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def on_event(self, event: dict, picture) -> None:
        if event["event"] not in self.settings.events:
            return
        try:
            self._queue.put_nowait(json.dumps(event).encode())
        except queue.Full:
            self.counts["dropped"] += 1
            if not self._overflowing:
                self._overflowing = True
                self.log(f"{self.name}: {QUEUE} posts are waiting; events are dropped (and counted) until it "
                         "catches up")

    def close(self) -> None:
        """Post what is queued for up to `LAST_WORDS` seconds, then stop."""
        self._deadline = time.monotonic() + LAST_WORDS
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout=LAST_WORDS + self.settings.timeout + 1)

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            if time.monotonic() > self._deadline:
                self.counts["dropped"] += 1
                continue
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        pause = FIRST_PAUSE
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self.counts["retried"] += 1
                if self._closing.wait(pause) and time.monotonic() > self._deadline:
                    break
                pause *= 2
            outcome = self._post(body)
            if outcome == "sent":
                self.counts["sent"] += 1
                self._overflowing = False
                return
            if outcome == "final":
                break
        self.counts["failed"] += 1

    def _post(self, body: bytes) -> str:
        """"sent", "retry" (worth another try) or "final"."""
        headers = {"Content-Type": "application/json", "User-Agent": "florence-edge"}
        if self.settings.secret:
            headers[SIGNATURE] = signature(self.settings.secret, body)
        request = urllib.request.Request(self.settings.url, body, headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout) as answer:
                answer.read()
            return "sent"
        except urllib.error.HTTPError as exc:
            return "retry" if exc.code == 429 or exc.code >= 500 else "final"
        except (OSError, ValueError, http.client.HTTPException):  # refused, unreachable, timed out, a broken answer
            return "retry"
