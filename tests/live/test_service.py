"""`service install` and the units: systemd's own verifier and exposure rating on every unit, the
dry run printing exactly what an install writes, and a user's edits never lost."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from expect import cli, ends_cleanly, snapshot

from edge.live.service import instance_unit
from firmware_configs import SYSTEMD

MAX_EXPOSURE = 1.4  # what the shipped units rate; the broker and webhooks on the local network keep it
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.fixture
def setup(demo_int8_bundle, tmp_path):
    """An installation as on a board: the program and the bundle outside /home, a root to install into."""
    program = tmp_path / "opt" / "bin" / "florence-edge"
    program.parent.mkdir(parents=True)
    program.write_text(f"#!/bin/sh\nexec {shutil.which('florence-edge') or 'florence-edge'} \"$@\"\n")
    program.chmod(0o755)
    bundle = tmp_path / "opt" / "bundle"
    shutil.copytree(demo_int8_bundle[0], bundle)
    return {"program": program, "bundle": bundle, "root": tmp_path / "root"}


def install(setup, *extra):
    return cli("service", "install", "--profile", "pi4", "-m", setup["bundle"], "--executable", setup["program"],
               "--root", setup["root"], *extra)


def printed_files(stdout: str) -> dict[str, str]:
    """The dry run's `--- PATH (mode M)` sections: {path: text}."""
    parts = re.split(r"^--- (\S+) \(mode \d+\)\n", stdout, flags=re.M)
    files = dict(zip(parts[1::2], parts[2::2]))
    last = list(files)[-1]
    files[last] = files[last].split("# then, as root:")[0]
    return files


def written_files(root: Path) -> dict[str, str]:
    return {"/" + str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def _analyze() -> str:
    assert SYSTEMD_ANALYZE, "systemd-analyze is missing: `make test` installs it (apt install systemd)"
    return SYSTEMD_ANALYZE


def exposure(unit: Path) -> float:
    result = subprocess.run([_analyze(), "security", "--offline=yes", str(unit)], capture_output=True,
                            text=True, check=True)
    return float(re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout).group(1))


def verify(unit: Path) -> None:
    result = subprocess.run([_analyze(), "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_the_dry_run_prints_exactly_the_files_an_install_writes(setup):
    dry = install(setup, "--dry-run")
    ends_cleanly(dry, 0, "")
    assert not setup["root"].exists(), "a dry run writes nothing"
    ends_cleanly(install(setup), 0, "")
    printed, written = printed_files(dry.stdout), written_files(setup["root"])
    assert set(printed) == set(written) == {"/etc/florence-edge/config.toml", "/etc/florence-edge/token",
                                            "/etc/systemd/system/florence-edge.service"}
    for path in printed:
        if path.endswith("token"):
            assert re.fullmatch(r"[0-9a-f]{64}\n", written[path])
            assert (setup["root"] / path[1:]).stat().st_mode & 0o777 == 0o600
        else:
            assert printed[path] == written[path], path
    assert "systemctl enable --now florence-edge.service" in dry.stdout


@pytest.mark.parametrize("instance", [None, "cam1"])
def test_installed_units_pass_systemd_verify_and_rate_at_most_1_4(setup, instance):
    ends_cleanly(install(setup, *(["--instance", instance] if instance else [])), 0, "")
    name = "florence-edge@.service" if instance else "florence-edge.service"
    unit = setup["root"] / "etc/systemd/system" / name
    text = unit.read_text()
    config = "%i" if instance else "config"
    assert f"ExecStart={setup['program']} live --config /etc/florence-edge/{config}.toml" in text
    assert (setup["root"] / f"etc/florence-edge/{instance or 'config'}.toml").exists()
    assert "WatchdogSec=120" in text and "MemoryMax=1200M" in text  # the pi4 profile's
    verify(unit)
    assert exposure(unit) <= MAX_EXPOSURE


@pytest.mark.parametrize("name", ["florence-edge.service", "florence-edge@.service"])
def test_shipped_units_pass_verify_and_rate_at_most_1_4(tmp_path, name):
    # as shipped but for ExecStart's program, which verify wants to exist
    text = (SYSTEMD / name).read_text().replace("/opt/florence-edge/bin/florence-edge", "/bin/true")
    unit = tmp_path / name
    unit.write_text(text)
    verify(unit)
    assert exposure(unit) <= MAX_EXPOSURE


def test_the_template_unit_is_the_single_one_per_instance():
    single, template = (SYSTEMD / "florence-edge.service").read_text(), (SYSTEMD / "florence-edge@.service").read_text()
    assert template == instance_unit(single)
    for line in ("Type=notify", "DynamicUser=yes", "SupplementaryGroups=video", "DeviceAllow=char-video4linux rw",
                 "DeviceAllow=char-media rw", "DeviceAllow=char-dma_heap rw", "ProtectSystem=strict",
                 "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "SystemCallFilter=@system-service", "Restart=on-failure", "StartLimitBurst=", "TimeoutStopSec=",
                 "CacheDirectory=florence-edge", "ConfigurationDirectory=florence-edge"):
        assert line in single, line


def test_the_installed_config_runs_the_loop(setup, tmp_path):
    ends_cleanly(install(setup), 0, "")
    etc = setup["root"] / "etc/florence-edge"
    result = cli("live", "--config", etc / "config.toml", "--token-file", etc / "token", "--source", "scenes",
                 "--frames", "3", "--http", "127.0.0.1:0")
    ends_cleanly(result, 0, "")
    assert result.stdout == "", "a service prints no line per result"
    assert json.loads(result.stderr.strip().splitlines()[-1].split(": ", 1)[1])["inferred"] >= 1


def test_a_file_the_user_changed_is_kept_unless_forced(setup):
    ends_cleanly(install(setup), 0, "")
    config = setup["root"] / "etc/florence-edge/config.toml"
    token = setup["root"] / "etc/florence-edge/token"
    ends_cleanly(install(setup), 0, "")  # unchanged files: installing again is fine
    config.write_text(config.read_text().replace("fps = 10.0", "fps = 5.0"))
    before = snapshot(setup["root"])
    ends_cleanly(install(setup), 2, "config.toml was changed since it was installed", "service")
    ends_cleanly(install(setup, "--dry-run"), 2, "pass --force", "service")
    assert snapshot(setup["root"]) == before
    ends_cleanly(install(setup, "--force"), 0, "")
    assert "fps = 5.0" in (config.parent / "config.toml.bak").read_text()
    assert "fps = 10.0" in config.read_text()
    assert token.exists() and snapshot(token.parent)[str(token)] == before[str(token)], "the token stays"


def test_the_token_is_never_replaced(setup):
    ends_cleanly(install(setup), 0, "")
    token = setup["root"] / "etc/florence-edge/token"
    token.write_text("the user's own token\n")
    ends_cleanly(install(setup, "--force"), 0, "")
    assert token.read_text() == "the user's own token\n"


@pytest.mark.parametrize("where, message", [
    ("program", "is under /home, which the service's sandbox hides"),
    ("bundle", "is under /home, which the service's sandbox hides"),
])
def test_paths_the_sandbox_hides_are_refused(setup, where, message):
    setup[where] = Path("/home/pi/venv/bin/florence-edge" if where == "program" else "/home/pi/bundle")
    result = install(setup)
    ends_cleanly(result, 2, message, "service")
    assert not setup["root"].exists()


def test_a_bundle_too_big_for_the_board_is_refused_with_its_measured_figure(setup):
    manifest_path = setup["bundle"] / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # what base int8 needs on the interpreter path, as usual and in low-memory mode (zero2w's)
    manifest["measured"]["peak_rss_mb"] = {"compiled": 940.0, "interpreter": 940.0}
    manifest["measured"]["low_memory_peak_rss_mb"] = {"compiled": 542.0, "interpreter": 542.0}
    manifest_path.write_text(json.dumps(manifest))
    result = cli("service", "install", "--profile", "zero2w", "-m", setup["bundle"], "--executable",
                 setup["program"], "--root", setup["root"])
    ends_cleanly(result, 2, "needs about 542 MB at its peak on the compiled path (measured by convert on", "service")
    assert "only 400 MB is allowed by the profile's memory_max_mb" in result.stderr
    live = cli("live", "--profile", "zero2w", "-m", setup["bundle"], "--source", "scenes", "--http", "127.0.0.1:0")
    ends_cleanly(live, 2, "needs about 542 MB at its peak", "live")


def test_a_bad_instance_name_is_one_line(setup):
    ends_cleanly(install(setup, "--instance", "../x"), 2, "--instance takes letters", "service")


def test_secret_files_become_credentials_and_kept_folders_the_state_directory(setup, tmp_path, monkeypatch):
    password, secret, camera = tmp_path / "mqtt-password", tmp_path / "hook-secret", tmp_path / "camera-password"
    password.write_text("s3cret\n")
    secret.write_text("hook\n")
    camera.write_text("v1ew\n")
    config = tmp_path / "events.toml"
    config.write_text(f'[camera]\nsource = "rtsp://viewer@cam.local/stream1"\npassword_file = "{camera}"\n\n'
                      f'[mqtt]\nurl = "mqtt://cam@127.0.0.1"\npassword_file = "{password}"\n\n'
                      '[events]\nsnapshots = "/var/lib/florence-edge/snapshots"\n\n'
                      f'[[webhooks]]\nurl = "http://127.0.0.1:9/hook"\nsecret_file = "{secret}"\n')
    ends_cleanly(install(setup, "--config", config), 0, "")
    unit = setup["root"] / "etc/systemd/system/florence-edge.service"
    text = unit.read_text()
    assert f"LoadCredential=mqtt_password_file:{password}\n" in text
    assert f"LoadCredential=source_password_file:{camera}\n" in text
    assert f"LoadCredential=webhook_1_secret:{secret}\n" in text and "StateDirectory=florence-edge" in text
    verify(unit)
    assert exposure(unit) <= MAX_EXPOSURE
    installed = setup["root"] / "etc/florence-edge/config.toml"
    assert str(password) not in installed.read_text() and str(secret) not in installed.read_text()
    # Where systemd hands the service its credentials, the config finds them.
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    shutil.copy(password, credentials / "mqtt_password_file")
    shutil.copy(secret, credentials / "webhook_1_secret")
    shutil.copy(camera, credentials / "source_password_file")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    from argparse import Namespace

    from edge.live import config as live_config
    from edge.live.outputs.mqtt import MqttOutput
    from edge.live.outputs.wiring import output_settings
    wanted = output_settings(live_config.resolve(Namespace(config=installed)))
    assert wanted.webhooks[0].secret == "hook" and str(wanted.snapshots) == "/var/lib/florence-edge/snapshots"
    assert MqttOutput(wanted.mqtt, "cam", {}, {}).password == "s3cret"
    from edge.live.video import _with_password
    settings = live_config.resolve(Namespace(config=installed))
    assert _with_password(settings.source, settings.source_password_file) == "rtsp://viewer:v1ew@cam.local/stream1"


@pytest.mark.parametrize("table, message", [
    ('[[webhooks]]\nurl = "http://127.0.0.1/"\nsecret = "inline"\n', "put the secret in a file (0600)"),
    ('[events]\nclips = "/srv/clips"\n', "clips /srv/clips: a service writes only under /var/lib/florence-edge"),
    ('[camera]\nsource = "rtsp://viewer:inline@cam.local/s"\n', "put the camera's password in a file (0600)"),
])
def test_secrets_in_the_config_and_folders_the_sandbox_forbids_are_refused(setup, tmp_path, table, message):
    config = tmp_path / "bad.toml"
    config.write_text(table)
    ends_cleanly(install(setup, "--config", config), 2, message, "service")
    assert not setup["root"].exists()
