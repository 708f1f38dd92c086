"""`florence-edge serve BUNDLE`: the phone page for a board with no camera. Phones on the network
open `http://BOARD:PORT/app/` and answer with their own camera and CPU; the board only serves
the page and the bundle's files (the routes and token rules of `live --http`'s `/app/`). Every
file is hashed at start and again every `--rehash-hours` in the background: a damaged one ends the
run (exit 1) rather than being served. No probe runs here: the board computes nothing, and each
phone checks every file's sha256 itself before it runs it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from edge.errors import FlorenceEdgeError
from edge.integrity import verify_bundle
from edge.live import phone_app
from edge.live.rehash import Rehash
from edge.live.web import AppOnlyHandler, HttpServer, check_binding, parse_address, read_token
from edge.manifest import load_manifest


class PhoneServer:
    """What the `/app/` routes need of a view: the bundle's manifest and the token."""

    outputs = None  # no events kept here

    def __init__(self, manifest, host: str, port: int, token: str | None):
        self.manifest, self.token = manifest, token
        self.server = HttpServer((host, port), AppOnlyHandler)
        self.server.view = self
        self.address = self.server.server_address[:2]

    def serve(self, stop: threading.Event) -> None:
        thread = threading.Thread(target=self.server.serve_forever, name="florence-edge-http", daemon=True)
        thread.start()
        stop.wait()
        self.server.shutdown()
        self.server.server_close()


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="bundle directory (int8: what the page runs)")
    parser.add_argument("--http", default="127.0.0.1:8080", metavar="[HOST:]PORT",
                        help="where to serve (default 127.0.0.1:8080; 0.0.0.0:8080 for phones on the network, "
                             "with a token)")
    parser.add_argument("--token", help="token every route wants (?token= once; the page keeps it in a cookie)")
    parser.add_argument("--token-file", help="the token in a file, out of `ps`")
    parser.add_argument("--rehash-hours", type=float, default=24.0,
                        help="hours between hashing the bundle's files again in the background (0: never)")


def main(args: argparse.Namespace) -> int:
    host, port = parse_address(args.http)
    token = read_token(args.token_file) if args.token_file else args.token
    check_binding(host, token)
    missing = phone_app.missing_runtime()
    if missing:
        raise FlorenceEdgeError(missing)
    manifest = load_manifest(args.bundle)
    verify_bundle(manifest, None)  # every file, every start: a damaged file is refused here, not on every phone
    try:
        server = PhoneServer(manifest, host, port, token)
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot serve on {args.http}: {exc.strerror}") from None
    stop, damaged = threading.Event(), []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    rehash = Rehash(manifest, args.rehash_hours * 3600, lambda line: (damaged.append(line), stop.set()))
    if args.rehash_hours > 0:
        rehash.start()
    shown = "localhost" if server.address[0] in ("127.0.0.1", "::1") else server.address[0]
    print(f"florence-edge serve: the phone page at http://{shown}:{server.address[1]}/app/"
          f"{'?token=...' if token else ''} (bundle {manifest.root})", file=sys.stderr, flush=True)
    server.serve(stop)
    rehash.stop()
    if damaged:
        print(f"florence-edge serve: stopped: {damaged[0]}", file=sys.stderr)
        return 1
    return 0
