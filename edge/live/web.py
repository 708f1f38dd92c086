"""`live --http`: the live loop seen from a browser, a video player or a dashboard.

The standard library's threading HTTP server: no dependency to install on a board, a thread
per connection (a viewer that stalls stalls only its own thread, and is dropped after
`TIMEOUT` seconds without progress), and the loop never waits for it (`edge.live.broadcast`).

Routes, and nothing else (no file is served by path): `/` the page, `/stream.mjpg` and
`/snapshot.jpg` (`?overlay=0`: the clean picture), `/events` (server-sent events), `/results`,
`/stats`, `/state` (tracked objects, triggers, zones), `/healthz`, `/events/<id>/snapshot.jpg`,
`/events/<id>/snapshot-clean.jpg` and `/events/<id>/clip.mp4` (what `--snapshots` and `--clips`
keep), `/app/` (the phone page, answering on the phone with the bundle's files it downloads from
`/app/bundle/`), and `POST /config` (tasks and text; zones and triggers, checked as on the command
line). With a token, every route wants it, as `Authorization: Bearer TOKEN` or `?token=TOKEN` (the
phone page's own requests: a cookie `/app/?token=TOKEN` sets).
"""

from __future__ import annotations

import hmac
import json
import os
import resource
import shutil
import sys
import threading
import time
from collections import deque
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from edge.errors import FlorenceEdgeError
from edge.live import phone_app
from edge.live.broadcast import JPEG_QUALITY, EventHub, FrameHub
from edge.live.events.settings import triggers_from, zones_from

TIMEOUT = 10.0  # s a client may take to send its request or to take the next piece of a stream
MAX_STREAMS = 8  # MJPEG and event streams at once; more get 503
MAX_BODY = 16 * 1024
MJPEG_FPS = 15.0  # a viewer's default cap (`?fps=` up to 60): results change a few times a second at most
FRAMES_STALE = 5.0  # s without a frame: /healthz says 503
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
RECENT_EVENTS = 30  # events /state keeps for a page that opens later
APP_COOKIE = "florence_edge_token"


def check_binding(host: str, token: str | None) -> None:
    """A view open beyond this machine needs a token: refuse, before anything starts, one that has none."""
    if host not in LOOPBACK and not token:
        raise FlorenceEdgeError(f"--http on {host} would open the view to the network: pass --token or "
                                "--token-file (or bind 127.0.0.1 and use an SSH tunnel)")


def read_token(path: str) -> str | None:
    """The token in a file (`--token-file`: kept out of `ps`), or None if it is empty."""
    try:
        return open(path).read().strip() or None
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot read the token file {path}: {exc.strerror}") from None


def parse_address(text: str) -> tuple[str, int]:
    """'[HOST:]PORT' -> (host, port); the host defaults to loopback."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise FlorenceEdgeError(f"--http takes [HOST:]PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class WebView:
    """Serves `live` (a `Live`) on (host, port); feed it with `on_frame` and `on_event`."""

    def __init__(self, live, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
                 jpeg_quality: int = JPEG_QUALITY):
        check_binding(host, token)
        self.live = live
        self.token = token
        self.frames = FrameHub(live.overlay.render, jpeg_quality)
        self.events = EventHub()
        self.results: dict[str, dict] = {}
        self.recent = deque(maxlen=RECENT_EVENTS)  # the newest events, for a page opened after them
        self.streams = threading.BoundedSemaphore(MAX_STREAMS)
        self.viewers = 0
        self._viewers_lock = threading.Lock()
        self.last_frame = None  # monotonic time of the newest frame
        self.outputs = None  # `Outputs`: their figures in /stats, their files under /events/<id>/
        self.server = HttpServer((host, port), _Handler)
        self.server.view = self
        self.address = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, name="florence-edge-http", daemon=True)
        self._thread.start()

    def on_frame(self, frame) -> None:
        if frame is not None:
            self.last_frame = time.monotonic()
        self.frames.publish(None if frame is None else (frame.display if frame.display is not None else frame.image))

    def on_event(self, kind: str, payload: dict) -> None:
        if kind == "result":
            self.results[payload["task"]] = payload
        elif kind == "event":
            self.recent.append(payload)
        self.events.publish(kind, json.dumps(payload))

    def stats(self) -> dict:
        stats = self.live.stats()
        age = None if self.last_frame is None else round(time.monotonic() - self.last_frame, 2)
        stats.update(viewers=self.viewers, jpegs_encoded=self.frames.encoded, frame_age_s=age,
                     rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                     captured_per_s=round(stats["captured"] / stats["seconds"], 2) if stats["seconds"] else 0.0)
        if self.outputs:
            stats["outputs"] = self.outputs.counts()
        return stats

    def state(self) -> dict:
        events = self.live.events
        now = events.snapshot() if events is not None else {"tracks": [], "triggers": {}, "zones": []}
        return {**now, "recent": list(self.recent)}

    def health(self) -> str | None:
        """None when frames flow and the model is loaded, else why not."""
        if self.live.failure:
            return self.live.failure
        if not self.live.model_loaded:
            return "the model is not loaded"
        if self.last_frame is None:
            return "no frame yet"
        if time.monotonic() - self.last_frame > FRAMES_STALE:
            return f"no frame for {time.monotonic() - self.last_frame:.0f} s"
        return None

    @property
    def manifest(self):
        """The bundle the loop runs: what `/app/bundle/` serves."""
        return self.live.model.manifest

    def viewing(self, delta: int) -> None:
        with self._viewers_lock:
            self.viewers += delta

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up or stalls is not an error of ours; anything else is one line.
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # ConnectionError and TimeoutError are OSErrors
            print(f"florence-edge: http: {type(exc).__name__}: {exc}", file=sys.stderr)


class _Handler(BaseHTTPRequestHandler):
    server_version = "florence-edge"
    timeout = TIMEOUT
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # a request log per frame would flood the journal
        pass

    @property
    def view(self) -> WebView:
        return self.server.view

    def _query(self) -> dict:
        return {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}

    def _authorised(self) -> bool:
        token = self.view.token
        if not token:
            return True
        given = self._query().get("token", "") or self._cookie()
        header = self.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), token.encode())

    def _cookie(self) -> str:
        """The token the phone page's own requests carry (its modules and files cannot take ?token=)."""
        cookies = SimpleCookie(self.headers.get("Cookie", ""))
        return cookies[APP_COOKIE].value if APP_COOKIE in cookies else ""

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data) -> None:
        self._send(status, (json.dumps(data) + "\n").encode())

    def _route(self, routes: dict) -> None:
        path = urlsplit(self.path).path
        handler = routes.get(path) or (self._event_file if path.startswith("/events/") else None) or (
            self._app if path.startswith("/app/") and self.command != "POST" else None)
        if handler is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such route: {path[:100]}"})
        elif not self._authorised():
            self._send(HTTPStatus.UNAUTHORIZED, b'{"error": "a token is needed"}\n',
                       extra=[("WWW-Authenticate", "Bearer")])
        else:
            handler()

    def do_GET(self) -> None:
        self._route({"/": self._page, "/stream.mjpg": self._mjpeg, "/snapshot.jpg": self._snapshot,
                     "/events": self._events, "/results": lambda: self._json(200, self.view.results),
                     "/stats": lambda: self._json(200, self.view.stats()), "/healthz": self._health,
                     "/state": lambda: self._json(200, self.view.state()), "/app": self._to_app})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self._route({"/config": self._config})

    def _page(self) -> None:
        page = resources.files("edge.live").joinpath("static/index.html").read_bytes()
        self._send(200, page, "text/html; charset=utf-8")

    def _overlay(self) -> bool:
        return self._query().get("overlay", "1") != "0"

    def _snapshot(self) -> None:
        _, jpeg = self.view.frames.jpeg(self._overlay())
        if jpeg is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "no frame yet"})
        else:
            self._send(200, jpeg, "image/jpeg")

    def _event_file(self) -> None:
        _, _, event_id, name = (urlsplit(self.path).path.split("/", 3) + ["", ""])[:4]
        path = self.view.outputs.file(event_id, name) if self.view.outputs else None
        if path is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no {name[:40]} kept for event {event_id[:40]}"})
            return
        if not self._file(path, "video/mp4" if name.endswith(".mp4") else "image/jpeg"):
            # removed by the size or age cap meanwhile
            self._json(HTTPStatus.NOT_FOUND, {"error": f"event {event_id[:40]}'s {name[:40]} was removed"})

    def _to_app(self) -> None:
        query = urlsplit(self.path).query
        location = "/app/" + (f"?{query}" if query else "")
        self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain", [("Location", location)])

    def _app(self) -> None:
        """The phone page and the bundle it downloads (`edge.live.phone_app`); with a token, a cookie
        for the page's own requests."""
        missing = phone_app.missing_runtime()
        path = phone_app.app_file(urlsplit(self.path).path[len("/app/"):], self.view.manifest)
        if missing or path is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": missing or f"no such file: {self.path[:100]}"})
            return
        extra = []
        if self.view.token:
            extra.append(("Set-Cookie", f"{APP_COOKIE}={self.view.token}; Path=/app/; HttpOnly; SameSite=Strict"))
        if not self._file(path, phone_app.content_type(path), extra):
            self._json(HTTPStatus.NOT_FOUND, {"error": f"{path.name} is not on this board"})

    def _file(self, path, content_type: str, extra=()) -> bool:
        """Send a file whole, streamed; False if it is not there."""
        try:
            with open(path, "rb") as kept:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(os.fstat(kept.fileno()).st_size))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    shutil.copyfileobj(kept, self.wfile)
        except FileNotFoundError:
            return False
        return True

    def _health(self) -> None:
        reason = self.view.health()
        self._json(200 if reason is None else HTTPStatus.SERVICE_UNAVAILABLE,
                   {"ok": reason is None, **({"reason": reason} if reason else {})})

    def _config(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._json(HTTPStatus.LENGTH_REQUIRED, {"error": "a JSON body with Content-Length is needed"})
            return
        if int(length) > MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"the body is over {MAX_BODY} bytes"})
            self.close_connection = True
            return
        try:
            body = json.loads(self.rfile.read(int(length)))
            if not isinstance(body, dict):
                raise ValueError("a JSON object is needed")
            applied = {}
            if "zones" in body or "triggers" in body:
                applied.update(self._configure_events(body))
            if "tasks" in body or "text" in body or not applied:
                tasks = body.get("tasks", self.view.live.tasks)
                if isinstance(tasks, str):
                    tasks = [t for t in tasks.replace(",", " ").split() if t]
                if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
                    raise ValueError("tasks is a list of task names")
                self.view.live.configure(tasks, body.get("text"))
                applied.update(tasks=self.view.live.tasks, text=body.get("text"))
        except (ValueError, FlorenceEdgeError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        self.view.events.publish("config", json.dumps(applied))
        self._json(200, applied)

    def _configure_events(self, body: dict) -> dict:
        """Zones and triggers from a body, checked together as `live` checks its settings: a zone a
        kept trigger names must stay."""
        live = self.view.live
        if live.events is None:
            raise ValueError("events are off in this loop")
        zones = zones_from(body["zones"]) if "zones" in body else live.events.zones
        current = [s.trigger.as_json() for s in live.events.triggers.values()]
        triggers = triggers_from(body.get("triggers", current), live.model, zones)
        live.configure_events(zones, triggers)
        return {"zones": [z.as_json() for z in zones], "triggers": [t.as_json() for t in triggers]}

    def _stream(self, content_type: str, pieces) -> None:
        """Send `pieces` (an iterator of bytes) until the client leaves; bounded in number."""
        if not self.view.streams.acquire(blocking=False):
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": f"{MAX_STREAMS} streams are open already"})
            return
        self.view.viewing(1)
        try:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for piece in pieces:
                self.wfile.write(piece)
                self.wfile.flush()
        except (ConnectionError, TimeoutError, OSError):
            pass  # the viewer left or stalled past TIMEOUT: its thread ends, nothing else notices
        finally:
            self.view.viewing(-1)
            self.view.streams.release()

    def _mjpeg(self) -> None:
        overlay = self._overlay()
        try:
            period = 1 / min(max(float(self._query().get("fps", MJPEG_FPS)), 0.1), 60)
        except ValueError:
            period = 1 / MJPEG_FPS

        def parts():
            sequence, sent = -1, 0.0
            while True:
                if not self.view.frames.wait_newer(sequence, 1.0) and sequence > 0:
                    continue
                time.sleep(max(0.0, sent + period - time.monotonic()))  # at most `fps` frames a second
                sent = time.monotonic()
                sequence, jpeg = self.view.frames.jpeg(overlay)
                if jpeg is not None:
                    yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                           + b"\r\n\r\n" + jpeg + b"\r\n")

        self._stream("multipart/x-mixed-replace; boundary=frame", parts())

    def _events(self) -> None:
        subscriber = self.view.events.subscribe()

        def messages():
            yield b"retry: 2000\n\n"
            while True:
                items = subscriber.take(timeout=5.0)
                if not items:
                    yield b": keep-alive\n\n"  # proxies and browsers close an idle stream
                for kind, data in items:
                    yield f"event: {kind}\ndata: {data}\n\n".encode()

        try:
            self._stream("text/event-stream", messages())
        finally:
            self.view.events.unsubscribe(subscriber)


class AppOnlyHandler(_Handler):
    """`florence-edge serve`: the phone page's routes only."""

    def do_GET(self) -> None:
        self._route({"/": self._to_app, "/app": self._to_app})

    def do_POST(self) -> None:
        self._route({})
