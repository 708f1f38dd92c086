"""The outputs a `live` run's settings ask for, built and checked before the camera opens, and what
they are told: events, finished results, the loop's figures, and the commands they may send back."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from edge.errors import FlorenceEdgeError
from edge.live.events.settings import triggers_from
from edge.live.outputs.clips import Clips
from edge.live.outputs.event_files import EventFiles, checked_folder
from edge.live.outputs.fanout import Outputs
from edge.live.outputs.snapshots import Snapshots
from edge.live.outputs.webhook import Webhook, webhook_settings
from edge.live.video import _av


@dataclass(frozen=True)
class OutputSettings:
    """The outputs a run asks for, every one checked."""

    mqtt: object = None  # MqttSettings
    webhooks: tuple = ()  # WebhookSettings
    snapshots: Path | None = None
    clips: Path | None = None


def output_settings(settings) -> OutputSettings:
    """What `settings` asks for, checked before the camera opens (one-line errors)."""
    webhooks = settings.webhooks or []
    return OutputSettings(_mqtt_settings(settings),
                          tuple(webhook_settings(t, f"webhook #{i + 1}") for i, t in enumerate(webhooks)),
                          checked_folder(settings.snapshots, "snapshots") if settings.snapshots else None,
                          _clips_folder(settings.clips) if settings.clips else None)


def _clips_folder(path: str) -> Path:
    _av()  # PyAV encodes them: its absence is bad input, not a surprise later
    return checked_folder(path, "clips")


def _mqtt_settings(settings):
    if not settings.mqtt:
        return None
    from edge.live.outputs.mqtt import MqttSettings, check

    out = MqttSettings(settings.mqtt, settings.mqtt_prefix, settings.discovery_prefix, settings.mqtt_password_file,
                       settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file, settings.stats_every)
    check(out)
    return out


def build_outputs(checked: OutputSettings, settings, live, frames, address, log) -> Outputs:
    """The outputs, not started; `frames`: a `FrameHub` (MQTT's snapshot); `address`: the web
    view's (host, port) or None, for Home Assistant's configuration URL."""
    made = [Webhook(w, log) for w in checked.webhooks]
    keep = (settings.keep_mb, settings.keep_days)
    if checked.snapshots:
        made.append(Snapshots(EventFiles(checked.snapshots, *keep, "snapshots", log), live.overlay.render))
    if checked.clips:
        made.append(Clips(EventFiles(checked.clips, *keep, "clips", log), live.source.fps or settings.fps or 10.0,
                          settings.clip_before, settings.clip_after, log))
        if hasattr(live.source, "encode"):
            made[-1].use_camera_encoder(live.source)
    if checked.mqtt:
        made.append(_mqtt_output(checked.mqtt, live, frames, address, log))
    return Outputs(made)


def _mqtt_output(mqtt_settings, live, frames, address, log):
    from edge.cli import version
    from edge.live.doctor import board_model
    from edge.live.outputs.mqtt import MqttOutput

    device = {"model": board_model(), "sw_version": version()}
    if address:
        device["configuration_url"] = f"http://{address[0]}:{address[1]}/"
    commands = {"tasks": lambda text: _set_tasks(live, text), "trigger": lambda text: _set_trigger(live, text)}
    output = MqttOutput(mqtt_settings, live.events.camera, device, commands,
                        lambda: frames.jpeg(overlay=True)[1], log)
    output.set_triggers(list(live.events.triggers))
    live.events.on_change = lambda: output.set_triggers(list(live.events.triggers))
    return output


def _set_tasks(live, text: str) -> dict:
    """`OD CAPTION`, or {"tasks": [...], "text": "..."}: checked as POST /config is."""
    body = json.loads(text) if text.lstrip().startswith("{") else {"tasks": text.replace(",", " ").split()}
    if not isinstance(body, dict) or not isinstance(body.get("tasks"), list):
        raise FlorenceEdgeError("set/tasks takes task names, or {\"tasks\": [...], \"text\": ...}")
    live.configure(body["tasks"], body.get("text"))
    return {"tasks": live.tasks, "text": body.get("text")}


def _set_trigger(live, text: str) -> dict:
    """A trigger's table (as in [[triggers]]) added or replacing the one of its name; with
    "delete": true, the trigger of that name removed."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise FlorenceEdgeError("set/trigger takes a JSON object, as a [[triggers]] table") from None
    if not isinstance(body, dict):
        raise FlorenceEdgeError("set/trigger takes a JSON object, as a [[triggers]] table")
    current = {s.trigger.name: s.trigger.as_json() for s in live.events.triggers.values()}
    if body.pop("delete", False):
        if body.get("name") not in current:
            raise FlorenceEdgeError(f"set/trigger: no trigger named {body.get('name')!r}")
        del current[body["name"]]
    else:
        current[body.get("name")] = body
    triggers = triggers_from(list(current.values()), live.model, live.events.zones, "set/trigger")
    live.configure_events(triggers=triggers)
    return {"triggers": [t.as_json() for t in triggers]}


class Every:
    """True once every `seconds` (monotonic)."""

    def __init__(self, seconds: float):
        self.seconds, self.last = seconds, time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            return True
        return False
