"""The live loop's settings: defaults < a board profile < a TOML file < the command line.

Every setting has one home, `[section] key`, in profiles and config files alike; on the command
line it is `--key-with-dashes`. A file's unknown key or wrong type is an error naming the file, the
key and what it expects, so a typo in a service's config stops it at start with one line in the
journal instead of running with a default nobody chose.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import FlorenceEdgeError
from edge.live.change import DEFAULT_THRESHOLD
from edge.live.events.triggers import parse_option
from edge.live.events.zones import parse_points
from edge.prompts import check_region
from edge.runtime import RUNTIMES
from firmware_configs import BOARDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Kind:
    """What a setting holds: `check` takes a TOML value and returns it (or raises ValueError),
    `parse` reads the command line's text."""

    expects: str
    check: Callable
    parse: Callable


def _fails(expects: str):
    raise ValueError(expects)


def _text_kind() -> Kind:
    def check(value):
        return value if isinstance(value, str) and value.strip() else _fails("text")
    return Kind("text", check, check)


def _whole(low: int, high: int | None = None) -> Kind:
    expects = f"a whole number from {low}" + (f" to {high}" if high is not None else " up")

    def check(value):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)
        return value if ok else _fails(expects)
    return Kind(expects, check, lambda text: check(int(text)))


def _number(low: float, high: float | None = None, above: bool = False) -> Kind:
    bound = f"above {low:g}" + (f" and at most {high:g}" if high is not None else "") if above else (
        f"from {low:g}" + (f" to {high:g}" if high is not None else " up"))
    expects = f"a number {bound}"

    def check(value):
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
              and (value > low if above else value >= low) and (high is None or value <= high))
        return float(value) if ok else _fails(expects)
    return Kind(expects, check, lambda text: check(float(text)))


def _choice(*names: str) -> Kind:
    expects = "one of " + ", ".join(names)

    def check(value):
        return value if value in names else _fails(expects)
    return Kind(expects, check, check)


def _flag() -> Kind:
    def check(value):
        return value if isinstance(value, bool) else _fails("true or false")
    return Kind("true or false", check, check)


def _size() -> Kind:
    expects = "[width, height], even whole numbers from 64 to 4096"

    def check(value):
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(v, int) and not isinstance(v, bool) and 64 <= v <= 4096 and v % 2 == 0 for v in value))
        return list(value) if ok else _fails(expects)

    def parse(text):
        width, sep, height = text.lower().partition("x")
        return check([int(width), int(height)]) if sep else _fails("WIDTHxHEIGHT, as 1280x720")
    return Kind(expects, check, parse)


def _texts(expects: str) -> Kind:
    def check(value):
        ok = isinstance(value, list) and value and all(isinstance(t, str) and t.strip() for t in value)
        return list(value) if ok else _fails(expects)
    return Kind(expects, check, check)


def _tables(kind: str, parse_option: Callable) -> Kind:
    """`[[kind]]` tables of a file (each checked where the loop is built, with the bundle at hand);
    on the command line one table per option, read by `parse_option`."""
    expects = f"[[{kind}]] tables"

    def check(value):
        ok = isinstance(value, list) and all(isinstance(t, dict) for t in value)
        return [dict(t) for t in value] if ok else _fails(expects)

    def parse(text):
        try:
            return parse_option(text)
        except FlorenceEdgeError as exc:
            raise ValueError(str(exc)) from None
    return Kind(expects, check, parse)


def _zone_option(text: str) -> dict:
    name, sep, points = text.partition("=")
    if not sep:
        raise FlorenceEdgeError("NAME=x,y x,y x,y (fractions 0-1 of the picture)")
    return {"name": name.strip(), "points": [list(p) for p in parse_points(points, "--zone")]}


def _webhook_option(text: str) -> dict:
    return {"url": text.strip()}


def _region() -> Kind:
    expects = "[x1, y1, x2, y2] in pixels"

    def check(value):
        if not isinstance(value, list) or any(isinstance(v, bool) for v in value):
            _fails(expects)
        try:
            return list(check_region(value))
        except FlorenceEdgeError:
            _fails(expects)

    return Kind(expects, check, lambda text: check([float(v) for v in text.split(",")]))


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    kind: Kind
    default: object = None
    help: str = ""
    flag: bool = True  # has a command-line option
    file_key: str | None = None  # its name in files when not `key` (`[camera] name` is `camera_name`)
    tables: bool = False  # held as `[[key]]` tables (zones, triggers)

    @property
    def option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def in_file(self) -> str:
        return self.file_key or self.key


SETTINGS = (
    Setting("board", "name", _text_kind(), help="the board a profile is for", flag=False),
    Setting("board", "ram_mb", _whole(64), help="the board's memory, MB (the smallest variant sold)", flag=False),
    Setting("board", "cpu", _text_kind(), help="its cores", flag=False),
    Setting("board", "models", _texts("a list of model names, as the device tree gives them"),
            help="what /proc/device-tree/model starts with on this board (for `doctor`)", flag=False),
    Setting("model", "model", _text_kind(), help="bundle directory"),
    Setting("model", "threads", _whole(1, 64), help="CPU threads (default: the CPUs this process may use)"),
    Setting("model", "runtime", _choice("auto", *RUNTIMES), help="LiteRT path (default: auto)"),
    Setting("model", "low_memory", _flag(), False,
            "free the vision graph after each encoded frame (about 200 MB for base) and reopen it for the next: "
            "for boards short of memory; costs a reload per encoded frame, none for reused ones"),
    Setting("model", "rehash_hours", _number(0), 24.0,
            "hours between hashing the bundle's files again in the background during a run (0: never; every "
            "start hashes them and runs the self-test)"),
    Setting("camera", "source", _text_kind(),
            help="scenes | picamera2[:N] | /dev/videoN or N | video file | image, folder or glob | rtsp://... "
                 "or http://... stream"),
    Setting("camera", "source_password_file", _text_kind(),
            help="a network camera's password, read from this file (0600), the URL naming only the user "
                 "(rtsp://USER@CAMERA/PATH): off the command line and out of config files", file_key="password_file"),
    Setting("camera", "main_size", _size(), help="picamera2's main stream, or a V4L2 camera's size: WIDTHxHEIGHT "
                                                 "(default 1280x720 for picamera2, the camera's own for V4L2)"),
    Setting("camera", "lores_size", _size(), help="picamera2's low-resolution stream the model sees: WIDTHxHEIGHT "
                                                  "(default: main's aspect, no larger than the model's input)"),
    Setting("camera", "fps", _number(0, 120, above=True), help="camera frame rate (picamera2 and V4L2)"),
    Setting("camera", "camera_name", _text_kind(), help="the camera's name in events (default: the host's name)",
            file_key="name"),
    Setting("camera", "every_frame", _flag(), False,
            "process every frame in order (recordings); default: the newest frame wins"),
    Setting("camera", "loop", _flag(), False, "restart a video file or image list at its end"),
    Setting("tasks", "tasks", _texts('a list of task names, as ["OD", "CAPTION"]'), help="tasks, as in `run`"),
    Setting("tasks", "text", _text_kind(), help="text input for tasks that take one"),
    Setting("tasks", "region", _region(), help="pixel box x1,y1,x2,y2 for REGION_TO_* tasks"),
    Setting("tasks", "change_threshold", _number(0, 1), DEFAULT_THRESHOLD,
            "below this thumbnail difference (0-1) a frame reuses the last results; 0: never"),
    Setting("tasks", "beams", _whole(1, 16), 1,
            "beam width (1, greedy: boxes show after a few tokens; with beams, only once every beam agrees, and "
            "each step costs a decoder step per beam)"),
    Setting("tasks", "max_new_tokens", _whole(1, 4096), help="longest answer, tokens"),
    Setting("tasks", "stale_after", _number(0, above=True), 5.0, "seconds after which the overlay dims a result"),
    Setting("output", "json", _flag(), False, "one JSON line per finished frame and task on stdout"),
    Setting("output", "print_results", _flag(), True,
            "a line per result on stdout (a service turns it off: the web view and STATUS carry results)"),
    Setting("output", "events_only", _flag(), False, "print only events, one JSON line each (no results)"),
    Setting("events", "track_hits", _whole(1, 100), 2,
            "inferred frames in a row an object must be seen on before its track starts (`new`)"),
    Setting("events", "track_expire", _number(0, above=True), 5.0, "seconds unseen before a track ends (`end`)"),
    Setting("events", "track_distance", _number(0, above=True), 2.0,
            "how far (box sizes) an object may move between two inferred frames and keep its track"),
    Setting("events", "track_min_score", _number(0, 1), 0.5, "detections scored lower are not tracked"),
    Setting("events", "snapshots", _text_kind(),
            help="keep each tracked object's and trigger firing's best frame in this folder (JPEG, with and "
                 "without the overlay)"),
    Setting("events", "clips", _text_kind(),
            help="keep an MP4 of each tracked object and trigger firing in this folder"),
    Setting("events", "clip_before", _number(0, 30), 5.0, "seconds a clip starts before its event"),
    Setting("events", "clip_after", _number(0, 60), 5.0, "seconds a clip goes on after its event ends"),
    Setting("events", "keep_mb", _number(1), 1000.0, "size cap of each of the snapshots and clips folders, MB: "
                                                     "the oldest files go first"),
    Setting("events", "keep_days", _number(0, above=True), 14.0, "snapshots and clips older than this are removed"),
    Setting("zones", "zones", _tables("zones", _zone_option),
            help="a zone: NAME=x,y x,y x,y (fractions of the picture, repeatable); in files [[zones]] with name, "
                 "points, inertia, loitering", tables=True),
    Setting("triggers", "triggers", _tables("triggers", parse_option),
            help="a text trigger: NAME=TEXT (repeatable); in files [[triggers]] with name, text, zone, frames, "
                 "clear_after, cooldown, min_score, check", tables=True),
    Setting("mqtt", "mqtt", _text_kind(), help="publish events to this broker: mqtt://[USER@]HOST[:PORT] or "
            "mqtts://... (the password from password_file)", file_key="url"),
    Setting("mqtt", "mqtt_prefix", _text_kind(), "florence-edge", "topics go under PREFIX/CAMERA/",
            file_key="prefix"),
    Setting("mqtt", "discovery_prefix", _text_kind(), "homeassistant", "Home Assistant's discovery prefix"),
    Setting("mqtt", "mqtt_password_file", _text_kind(), help="the broker password, read from this file",
            file_key="password_file"),
    Setting("mqtt", "mqtt_ca_file", _text_kind(), help="mqtts: the CA certificate file", file_key="ca_file"),
    Setting("mqtt", "mqtt_cert_file", _text_kind(), help="mqtts: a client certificate file", file_key="cert_file"),
    Setting("mqtt", "mqtt_key_file", _text_kind(), help="mqtts: the client certificate's key file",
            file_key="key_file"),
    Setting("mqtt", "stats_every", _number(1), 30.0, "seconds between the loop's figures on PREFIX/CAMERA/stats"),
    Setting("webhooks", "webhooks", _tables("webhooks", _webhook_option),
            help="POST each event as JSON to this http(s) URL (repeatable); in files [[webhooks]] with url, events, "
                 "secret or secret_file (HMAC-SHA256 signature), timeout, retries", tables=True),
    Setting("web", "http", _text_kind(), help="serve the web view on [HOST:]PORT (another host than 127.0.0.1 "
                                              "needs a token)"),
    Setting("web", "token_file", _text_kind(), help="read the web view's token from this file"),
    Setting("web", "jpeg_quality", _whole(10, 95), 80, "JPEG quality of the web view's frames"),
    Setting("service", "memory_max_mb", _whole(64),
            help="memory the service may use (its MemoryMax); the bundle must fit in it"),
    Setting("service", "watchdog_sec", _whole(15, 3600), 60,
            help="systemd restarts the service when the loop makes no progress for this long (its WatchdogSec): "
                 "longer than the slowest single graph run on the board and the camera's 10 s reopen pause",
            flag=False),
)
BY_KEY = {s.key: s for s in SETTINGS}
IN_FILE = {(s.section, s.in_file): s for s in SETTINGS}
SECTIONS = tuple(dict.fromkeys(s.section for s in SETTINGS))


@dataclass
class Config:
    """Resolved settings: `values[key]` and where each came from (`origins[key]`)."""

    values: dict
    origins: dict

    def __getattr__(self, key):
        try:
            return self.values[key]
        except KeyError:
            raise AttributeError(key) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every setting's command-line option, defaulting to None: unset means "not given here"."""
    parser.add_argument("--profile", help=f"board profile: {', '.join(profile_names())}")
    parser.add_argument("--config", metavar="FILE.toml", help="a config file (overrides the profile)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved configuration as TOML and exit (needs no bundle or camera)")
    for setting in SETTINGS:
        if not setting.flag:
            continue
        default = f" (default {_shown(setting.default)})" if setting.default is not None else ""
        if setting.key == "tasks":
            parser.add_argument("-t", "--task", dest="tasks", action="append", help="task, as in `run` (repeatable)")
        elif setting.tables:
            parser.add_argument(setting.option[:-1], dest=setting.key, action="append", type=_option_type(setting),
                                help=setting.help)
        elif isinstance(setting.default, bool):
            parser.add_argument(setting.option, action=argparse.BooleanOptionalAction, default=None,
                                help=setting.help + default)
        else:
            names = ("-m", setting.option) if setting.key == "model" else (setting.option,)
            parser.add_argument(*names, type=_option_type(setting), help=setting.help + default)


def _option_type(setting: Setting):
    def parse(text):
        try:
            return setting.kind.parse(text)
        except ValueError as exc:
            expects = str(exc) if str(exc) and not str(exc).startswith(("invalid literal", "could not")) else (
                setting.kind.expects)
            raise argparse.ArgumentTypeError(f"expects {expects}, got {text!r}") from None
    parse.__name__ = setting.key
    return parse


def profile_names() -> list[str]:
    return sorted(p.stem for p in BOARDS.glob("*.toml"))


def profile_path(name: str) -> Path:
    path = BOARDS / f"{name}.toml"
    if name not in profile_names():
        raise FlorenceEdgeError(f"unknown profile {name!r}; choose from {', '.join(profile_names())}")
    return path


def read_file(path) -> dict:
    """A profile or config file's settings, {key: value}, every key and type checked."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot read config {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise FlorenceEdgeError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise FlorenceEdgeError(f"{path}: not valid TOML ({exc})") from None
    values = {}
    for section, table in raw.items():
        if section not in SECTIONS:
            raise FlorenceEdgeError(f"{path}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        if BY_KEY.get(section) is not None and BY_KEY[section].tables:
            values[section] = _checked(path, section, section, table)
            continue
        if not isinstance(table, dict):
            raise FlorenceEdgeError(f"{path}: {section} must be a section ([{section}])")
        for key, value in table.items():
            values[IN_FILE[(section, key)].key] = _checked(path, section, key, value)
    return values


def _checked(path: Path, section: str, key: str, value):
    setting = IN_FILE.get((section, key))
    if setting is None:
        known = ", ".join(s.in_file for s in SETTINGS if s.section == section)
        raise FlorenceEdgeError(f"{path}: unknown key {key!r} in [{section}]; known: {known}")
    try:
        return setting.kind.check(value)
    except ValueError:
        raise FlorenceEdgeError(f"{path}: [{section}] {key} expects {setting.kind.expects}, "
                                f"got {_shown(value)}") from None


def resolve(args: argparse.Namespace) -> Config:
    """Defaults, then `args.profile`, then `args.config`, then every option given on the command line
    (settings `args` lacks or leaves None are not given)."""
    values = {s.key: s.default for s in SETTINGS}
    origins = {s.key: "default" for s in SETTINGS}
    layers = []
    if getattr(args, "profile", None):
        layers.append((f"profile {args.profile}", read_file(profile_path(args.profile))))
    if getattr(args, "config", None):
        layers.append((f"config {args.config}", read_file(args.config)))
    given = {s.key: getattr(args, s.key, None) for s in SETTINGS if s.flag}
    layers.append(("command line", {key: value for key, value in given.items() if value is not None}))
    for origin, layer in layers:
        values.update(layer)
        origins.update(dict.fromkeys(layer, origin))
    return Config(values, origins)


def to_toml(config: Config, origins: bool = True) -> str:
    """The configuration as a TOML file `read_file` takes back; unset keys as comments."""
    lines = []
    for section in SECTIONS:
        settings = [s for s in SETTINGS if s.section == section]
        if settings[0].tables:
            lines += _tables_toml(settings[0], config, origins)
            continue
        lines.append(f"[{section}]")
        for setting in settings:
            value = config.values[setting.key]
            note = f"  # {config.origins[setting.key]}" if origins else ""
            if value is None:
                lines.append(f"# {setting.in_file} = (unset){note if origins else ''}")
            else:
                lines.append(f"{setting.in_file} = {_shown(value)}{note}")
        lines.append("")
    return "\n".join(lines)


def _tables_toml(setting: Setting, config: Config, origins: bool) -> list[str]:
    tables = config.values[setting.key] or []
    lines = [f"# [[{setting.key}]]: {config.origins[setting.key]}"] if origins and tables else []
    for table in tables:
        lines.append(f"[[{setting.key}]]")
        lines += [f"{key} = {_shown(value)}" for key, value in table.items() if value is not None]
        lines.append("")
    return lines


def _shown(value) -> str:
    """A TOML literal (JSON's strings, numbers and arrays are TOML's too)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False)
