"""`florence-edge service install`: the systemd unit and config file for a board, and how to enable them.

The unit is the shipped one (`firmware_configs/systemd/`) with this installation's executable and
the profile's watchdog and memory limit; the config file is the resolved configuration (profile,
`--config`, options). Each written file carries the sha256 of what was written, so a later install
replaces a file only if nobody has changed it since (or with `--force`, keeping the changed one as
FILE.bak). `--dry-run` prints exactly the files an install would write, and writes nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from edge.bundle_memory import check_fits
from edge.errors import FlorenceEdgeError
from edge.files import CREDENTIALS, publish
from edge.live import config
from edge.manifest import load_manifest
from edge.runtime import select_runtime
from firmware_configs import SYSTEMD

UNIT = "florence-edge.service"
TEMPLATE = "florence-edge@.service"
_MARK = "# written by florence-edge service install; sha256 of what follows: "
# Paths the sandbox hides (ProtectHome=yes): neither the program nor the bundle may live there.
_HIDDEN = ("/home", "/root", "/run/user")
STATE = "/var/lib/florence-edge"


@dataclass
class Planned:
    path: Path  # where, under --root
    text: str
    mode: int = 0o644
    secret: bool = False  # printed as a description, not its content

    def shown(self) -> str:
        return "(a new random token, 64 hex digits)" if self.secret else self.text


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="action", required=True)
    install = sub.add_parser("install", help="write the systemd unit and config file for a board",
                             description="write the systemd unit and config file for a board")
    install.add_argument("--profile", required=True, help=f"board profile: {', '.join(config.profile_names())}")
    install.add_argument("-m", "--model", required=True, help="bundle directory (outside /home: the sandbox hides it)")
    install.add_argument("--config", metavar="FILE.toml", help="settings over the profile's")
    install.add_argument("--source", help="camera or stream, over the profile's")
    install.add_argument("-t", "--task", dest="tasks", action="append", help="task (repeatable), over the profile's")
    install.add_argument("--http", help="web view [HOST:]PORT, over the profile's")
    install.add_argument("--instance", help="one of several services (a camera or config each): "
                                            "florence-edge@INSTANCE.service, config INSTANCE.toml")
    install.add_argument("--executable", help="the florence-edge program the unit runs (default: this one)")
    install.add_argument("--root", default="/", help="install under this folder instead of / (images, tests)")
    install.add_argument("--dry-run", action="store_true", help="print the files it would write; write nothing")
    install.add_argument("--force", action="store_true", help="replace files changed since the last install "
                                                              "(each kept as FILE.bak)")


def main(args: argparse.Namespace) -> int:
    files = plan(args)
    root = Path(args.root)
    for item in files:
        _check_replaceable(root, item, args.force)
    if args.dry_run:
        for item in files:
            print(f"--- {item.path} (mode {item.mode:o})\n{item.shown()}", end="" if item.shown().endswith("\n")
                  else "\n")
    else:
        for item in files:
            _write(root, item, args.force)
        print("\n".join(f"wrote {item.path}" for item in files), file=sys.stderr)
    print(enable_commands(args.instance))
    return 0


def plan(args: argparse.Namespace) -> list[Planned]:
    """The files an install writes, in order: config, token (only if there is none yet), unit."""
    _check_instance(args.instance)
    settings = config.resolve(argparse.Namespace(profile=args.profile, config=args.config))
    overrides = {"model": str(Path(args.model).absolute()), "source": args.source, "tasks": args.tasks,
                 "http": args.http, "print_results": False}  # the web view and STATUS carry results
    for key, value in overrides.items():
        if value is not None:
            settings.values[key], settings.origins[key] = value, "service install"
    settings.values["token_file"] = None  # the unit hands the token over as a credential
    credentials = _credentials(settings)
    _check_kept_folders(settings)
    executable = Path(args.executable or _this_program())
    _check_visible(executable, "the florence-edge program")
    _check_visible(Path(settings.model), "the bundle")
    manifest = load_manifest(settings.model)
    check_fits(manifest, select_runtime(settings.runtime, manifest.quantization), settings.memory_max_mb,
               "allowed by the profile's memory_max_mb", machine=False, low_memory=settings.low_memory)
    folder = Path("/etc/florence-edge")
    config_path = folder / (f"{args.instance}.toml" if args.instance else "config.toml")
    files = [Planned(config_path, _marked(config.to_toml(settings, origins=False)))]
    token = folder / "token"
    if not (Path(args.root) / token.relative_to("/")).exists():
        files.append(Planned(token, secrets.token_hex(32) + "\n", 0o600, secret=True))
    unit_name = TEMPLATE if args.instance else UNIT
    unit = render_unit((SYSTEMD / unit_name).read_text(), executable, settings, credentials)
    files.append(Planned(Path("/etc/systemd/system") / unit_name, _marked(unit)))
    return files


def render_unit(text: str, executable: Path, settings, credentials: dict | None = None) -> str:
    """The shipped unit with this installation's program, the board's watchdog and memory limit, and
    a `LoadCredential=` per secret file (`credentials`: name -> the file's path)."""
    text = re.sub(r"^(ExecStart=)\S+", lambda m: m.group(1) + str(executable), text, count=1, flags=re.M)
    loads = "".join(f"\nLoadCredential={name}:{path}" for name, path in (credentials or {}).items())
    text = re.sub(r"^(LoadCredential=token:.*)$", lambda m: m.group(1) + loads, text, count=1, flags=re.M)
    text = re.sub(r"^WatchdogSec=.*$", f"WatchdogSec={settings.watchdog_sec}", text, count=1, flags=re.M)
    if settings.memory_max_mb:
        text = re.sub(r"^MemoryMax=.*$", f"MemoryMax={settings.memory_max_mb}M", text, count=1, flags=re.M)
    return text


def _credentials(settings) -> dict[str, str]:
    """Secret files (the camera's and MQTT's passwords, MQTT certificates, webhook secrets) become systemd
    credentials: the service's dynamic user cannot read root's 0600 files, and the config names them by
    `${CREDENTIALS_DIRECTORY}`. A secret written in the config itself is refused: that file is world-readable."""
    found = {}
    if urlsplit(settings.values.get("source") or "").password is not None:
        raise FlorenceEdgeError("--source: a service's config file is readable by every user; put the camera's "
                                "password in a file (0600), name it with --source-password-file and leave it out "
                                "of the URL (rtsp://USER@CAMERA/PATH)")
    for key in ("source_password_file", "mqtt_password_file", "mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file"):
        if settings.values.get(key):
            found[key] = str(Path(settings.values[key]).absolute())
            settings.values[key] = f"{CREDENTIALS}/{key}"
    for i, table in enumerate(settings.values.get("webhooks") or []):
        if "secret" in table:
            raise FlorenceEdgeError(f"webhook #{i + 1}: a service's config file is readable by every user; put the "
                                    "secret in a file (0600) and name it with secret_file")
        if "secret_file" in table:
            found[f"webhook_{i + 1}_secret"] = str(Path(table["secret_file"]).absolute())
            table["secret_file"] = f"{CREDENTIALS}/webhook_{i + 1}_secret"
    return found


def _check_kept_folders(settings) -> None:
    """The sandbox lets the service write only its state folder (StateDirectory=): snapshots and clips go there."""
    for key in ("snapshots", "clips"):
        folder = settings.values.get(key)
        if folder and not str(Path(folder).absolute()).startswith(STATE + "/"):
            raise FlorenceEdgeError(f"{key} {folder}: a service writes only under {STATE} (its StateDirectory); "
                                    f"use e.g. {STATE}/{key}")


def instance_unit(text: str) -> str:
    """The template unit (`florence-edge@.service`) from the single one: its own config, cache and name."""
    return (text.replace("# florence-edge: Florence-2 on a camera, run as a service and left alone for months.",
                         "# florence-edge@INSTANCE: one of several services, a camera or config each "
                         "(/etc/florence-edge/INSTANCE.toml).")
            .replace("Description=Florence-2 live camera (florence-edge)",
                         "Description=Florence-2 live camera (florence-edge, %i)")
            .replace("/etc/florence-edge/config.toml", "/etc/florence-edge/%i.toml")
            .replace("FLORENCE_EDGE_CACHE=%C/florence-edge ", "FLORENCE_EDGE_CACHE=%C/florence-edge/%i ")
            .replace("CacheDirectory=florence-edge\n", "CacheDirectory=florence-edge/%i\n"))


def enable_commands(instance: str | None) -> str:
    unit = f"florence-edge@{instance}.service" if instance else UNIT
    return "\n".join([
        "# then, as root:",
        "systemctl daemon-reload",
        f"systemctl enable --now {unit}",
        f"systemctl status {unit}",
        f"journalctl -u {unit} -f",
    ])


def _this_program() -> str:
    beside = Path(sys.executable).parent / "florence-edge"
    found = beside if beside.exists() else shutil.which("florence-edge")
    if not found:
        raise FlorenceEdgeError("cannot find the florence-edge program: pass --executable")
    return str(found)


def _check_instance(instance: str | None) -> None:
    if instance is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", instance):
        raise FlorenceEdgeError(f"--instance takes letters, digits, '_', '.', '-', got {instance!r}")


def _check_visible(path: Path, what: str) -> None:
    absolute = str(path.absolute())
    for hidden in _HIDDEN:
        if absolute == hidden or absolute.startswith(hidden + "/"):
            raise FlorenceEdgeError(f"{what} ({absolute}) is under {hidden}, which the service's sandbox hides "
                                    "(ProtectHome=yes): put it under /opt/florence-edge (docs/service.md)")


def _marked(text: str) -> str:
    return f"{_MARK}{_digest(text)}\n{text}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _changed_by_user(path: Path) -> bool:
    """True unless `path` is exactly what an install wrote (its first line holds the sha256 of the rest)."""
    try:
        first, _, rest = path.read_text().partition("\n")
    except (OSError, UnicodeDecodeError):
        return True
    return not (first.startswith(_MARK) and first[len(_MARK):] == _digest(rest))


def _check_replaceable(root: Path, item: Planned, force: bool) -> None:
    target = root / item.path.relative_to("/")
    if target.exists() and not item.secret and _changed_by_user(target) and not force:
        raise FlorenceEdgeError(f"{target} was changed since it was installed (or not written by this command); "
                                "keep it, or pass --force to replace it (it is kept as .bak)")


def _write(root: Path, item: Planned, force: bool) -> None:
    target = root / item.path.relative_to("/")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and _changed_by_user(target) and force:
            shutil.copy2(target, target.with_name(target.name + ".bak"))
        if target.exists() and target.read_text() == item.text:
            return
        temporary = target.with_name(f".{target.name}.{os.getpid()}")
        # created private: a token must never be readable, not even before its final mode is set
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(item.text)
        publish(temporary, target, mode=item.mode)
    except OSError as exc:
        raise FlorenceEdgeError(f"cannot write {target}: {exc.strerror} (run as root, or pass --root)") from None
