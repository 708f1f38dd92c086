"""Webhooks against a real HTTP receiver: signed bodies, a receiver that fails then recovers, one that
hangs, a queue that overflows, and `live --webhook` end to end."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from expect import cli, ends_cleanly

from edge.errors import FlorenceEdgeError
from edge.live.outputs import webhook
from edge.live.outputs.webhook import SIGNATURE, Webhook, webhook_settings


class Receiver:
    """An HTTP server on a free loopback port; `answers` says what each next POST gets: a status
    code, or "hang" (never answer). `posts` holds (headers, body) of each POST as it came."""

    def __init__(self, answers=()):
        self.answers = list(answers)
        self.posts: list[tuple[dict, bytes]] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    receiver.release.wait(30)
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.posts) >= count, f"{len(self.posts)} of {count} posts came"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(request):
    made = []

    def make(*answers):
        made.append(Receiver(answers))
        return made[-1]
    yield make
    for r in made:
        r.close()


def event(kind="new", number=0) -> dict:
    return {"event": kind, "id": f"1796175253.{number:06d}-abcdef", "name": "square", "score": 0.9}


def signed_by(secret: str, headers: dict, body: bytes) -> bool:
    """What a receiver does (docs/events.md shows the same lines)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get(SIGNATURE, ""))


def test_a_signed_post_per_event_of_the_chosen_types(receiver):
    r = receiver()
    hook = Webhook(webhook_settings({"url": r.url, "secret": "s3cret", "events": ["new", "on"]}))
    hook.start()
    for kind in ("new", "update", "on", "end"):
        hook.on_event(event(kind), None)
    r.wait(2)
    hook.close()
    assert [json.loads(body)["event"] for _, body in r.posts] == ["new", "on"]
    for headers, body in r.posts:
        assert signed_by("s3cret", headers, body) and headers["Content-Type"] == "application/json"
        assert not signed_by("another", headers, body)
    assert hook.counts == {"sent": 2, "retried": 0, "failed": 0, "dropped": 0}


def test_a_500_is_retried_and_a_404_is_final(receiver):
    r = receiver(500, 200, 404)
    hook = Webhook(webhook_settings({"url": r.url}))
    hook.start()
    hook.on_event(event("new", 1), None)
    hook.on_event(event("new", 2), None)
    r.wait(3)
    hook.close()
    assert [json.loads(body)["id"] for _, body in r.posts] == [event("new", n)["id"] for n in (1, 1, 2)]
    assert hook.counts == {"sent": 1, "retried": 1, "failed": 1, "dropped": 0}


def test_a_hanging_receiver_never_holds_up_the_caller_and_overflow_is_said_once(receiver, monkeypatch):
    monkeypatch.setattr(webhook, "QUEUE", 3)
    r = receiver(*["hang"] * 20)
    said = []
    hook = Webhook(webhook_settings({"url": r.url, "timeout": 0.5, "retries": 0}), said.append)
    hook.start()
    begun = time.monotonic()
    for n in range(20):
        hook.on_event(event("new", n), None)
    handed_over = time.monotonic() - begun
    r.wait(2)
    time.sleep(0.6)  # past the first post's timeout
    hook.close()
    assert handed_over < 0.05, f"handing 20 events over took {handed_over * 1e3:.0f} ms"
    assert hook.counts["dropped"] >= 16 and hook.counts["failed"] >= 1 and hook.counts["sent"] == 0
    assert len(said) == 1 and "events are dropped (and counted)" in said[0]


@pytest.mark.parametrize("table, message", [
    ({"url": "ftp://x/y"}, "an http:// or https:// address"),
    ({"url": "http://127.0.0.1:99999/"}, "bad port"),
    ({"url": "http://127.0.0.1/", "events": ["begin"]}, "events: a list of new, update, end, on, off"),
    ({"url": "http://127.0.0.1/", "timeout": 0}, "timeout: seconds above 0"),
    ({"url": "http://127.0.0.1/", "retries": 1.5}, "retries: a whole number"),
    ({"url": "http://127.0.0.1/", "secret_file": "/no/such/secret"}, "secret_file /no/such/secret: No such file"),
    ({"url": "http://127.0.0.1/", "token": "x"}, "unknown key 'token'"),
])
def test_bad_webhook_tables_are_one_line(table, message):
    with pytest.raises(FlorenceEdgeError, match=message):
        webhook_settings(table)


def test_live_posts_its_events_signed(demo_int8_bundle, walking_clip, receiver, tmp_path):
    r = receiver()
    secret = tmp_path / "secret"
    secret.write_text("from a file\n")
    config = tmp_path / "hooks.toml"
    config.write_text(f'[[webhooks]]\nurl = "{r.url}"\nsecret_file = "{secret}"\nevents = ["new", "on", "end"]\n')
    result = cli("live", "-m", demo_int8_bundle[0], "--source", walking_clip, "-t", "OD", "--every-frame",
                 "--trigger", "red=a red square", "--config", config, "--events-only")
    ends_cleanly(result, 0, "")
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    posted = [json.loads(body) for _, body in r.posts]
    assert posted == [e for e in printed if e["event"] in ("new", "on", "end")] and posted
    assert all(signed_by("from a file", headers, body) for headers, body in r.posts)


def test_the_receivers_check_in_the_readme_and_guide_accepts_our_signature():
    from pathlib import Path

    from edge.live.outputs.webhook import signature
    root = Path(__file__).resolve().parents[3]
    body = json.dumps(event()).encode()
    for guide in ("docs/events.md",):
        code = next(block for block in (root / guide).read_text().split("```python\n")[1:] if "def signed" in block)
        scope: dict = {}
        exec(code.split("```")[0], scope)
        assert scope["signed"](b"s3cret", body, signature("s3cret", body)), guide
        assert not scope["signed"](b"s3cret", body + b" ", signature("s3cret", body)), guide
