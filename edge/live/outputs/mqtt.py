"""Events out over MQTT, with Frigate's conventions and Home Assistant discovery.

Topics under `<prefix>/<camera>` (docs/events.md, Events out): `available` (retained `online` on every
connect, `offline` as the last will and on a clean stop), `events` (every event, JSON),
`trigger/<name>` (retained ON/OFF), `count/<label>` (retained), `result/<task>`, `stats`,
`snapshot` (retained JPEG of the newest event's frame, overlay drawn), and commands in
`set/tasks` and `set/trigger`, answered on `set/state`. Discovery configs go under
`<discovery prefix>/<component>/florence_edge_<camera>/<object>/config`, retained, again when
Home Assistant says `online` on `<discovery prefix>/status`.

Nothing here runs on the inference thread: `publish()` drops a message into a bounded queue
(what does not fit is dropped and counted) and paho's own network thread sends; a broker that is
away loses what is published meanwhile (qos 0, counted as dropped), and its going and coming
back is logged once each way. paho-mqtt 2.x (the `mqtt` extra) is imported only when used.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from edge.errors import FlorenceEdgeError
from edge.files import credential

QUEUE = 256  # messages waiting for the sending thread
EVENT_TYPES = ("new", "update", "end", "on", "off")
_ID = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class MqttSettings:
    url: str
    prefix: str = "florence-edge"
    discovery_prefix: str = "homeassistant"
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    stats_every: float = 30.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool
    user: str | None


def parse_url(url: str) -> Broker:
    """mqtt://[USER@]HOST[:PORT] or mqtts://...; one-line error otherwise (a password never goes in it)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("mqtt", "mqtts"):
        raise FlorenceEdgeError(f"--mqtt: use mqtt://[USER@]HOST[:PORT] or mqtts://..., got {url!r}")
    if parts.password is not None:
        raise FlorenceEdgeError("--mqtt: a password does not go in the address (it would show in `ps`); "
                                "put it in a file and name it with mqtt password_file")
    try:
        port = parts.port
    except ValueError:
        raise FlorenceEdgeError(f"--mqtt: bad port in {url!r}") from None
    if not parts.hostname or parts.path not in ("", "/"):
        raise FlorenceEdgeError(f"--mqtt: name the broker as mqtt://HOST[:PORT], got {url!r}")
    tls = parts.scheme == "mqtts"
    return Broker(parts.hostname, port or (8883 if tls else 1883), tls, unquote(parts.username) if parts.username
                  else None)


def _readable(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    path = credential(path)
    try:
        with open(path, "rb"):
            return path
    except OSError as exc:
        raise FlorenceEdgeError(f"mqtt {what} {path}: {exc.strerror}") from None


def check(settings: MqttSettings) -> None:
    """Everything that can be bad input, before a camera opens: the address, the files, the library."""
    parse_url(settings.url)
    for path, what in ((settings.password_file, "password_file"), (settings.ca_file, "ca_file"),
                       (settings.cert_file, "cert_file"), (settings.key_file, "key_file")):
        _readable(path, what)
    _paho()


def _paho():
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise FlorenceEdgeError("--mqtt needs paho-mqtt: pip install 'florence-edge[mqtt]'") from None
    return mqtt


def object_id(text: str) -> str:
    """What Home Assistant takes in ids and topics: letters, digits, '_' and '-'."""
    return _ID.sub("_", text.strip().lower()) or "_"


class MqttOutput:
    """Publishes a live loop's events, results and figures; takes commands for it.

    `commands`: name -> callable(payload text) returning what was applied (raising
    `FlorenceEdgeError` to refuse); `device`: Home Assistant's device block extras (model,
    sw_version, configuration_url); `snapshot()`: the newest frame as JPEG bytes, or None."""

    name = "mqtt"

    def __init__(self, settings: MqttSettings, camera: str, device: dict, commands: dict, snapshot=None, log=print):
        self.settings = settings
        self.broker = parse_url(settings.url)
        self.password = self._password()
        self.tls_files = {"ca_certs": _readable(settings.ca_file, "ca_file"),
                          "certfile": _readable(settings.cert_file, "cert_file"),
                          "keyfile": _readable(settings.key_file, "key_file")}
        self.camera = camera
        self.base = f"{settings.prefix}/{object_id(camera)}"
        self.node = f"florence_edge_{object_id(camera)}"
        self.device = {"identifiers": [self.node], "name": camera, "manufacturer": "florence-edge", **device}
        self.commands = commands
        self.snapshot = snapshot or (lambda: None)
        self.log = log
        self.counts = {"sent": 0, "dropped": 0, "reconnects": 0}
        self.triggers: dict[str, str] = {}  # name -> "ON"/"OFF", resent on every connect
        self.labels: dict[str, int] = {}  # label -> tracked objects now
        self._announced: set[str] = set()  # discovery config topics sent
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._connected = False
        self._ever = False
        self._lock = threading.Lock()
        self._client = self._make_client()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="florence-edge-mqtt", daemon=True)

    def _password(self) -> str | None:
        path = _readable(self.settings.password_file, "password_file")
        if path is None:
            return None
        return Path(path).read_text().strip()

    def _make_client(self):
        mqtt = _paho()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.node}-live")
        client.will_set(f"{self.base}/available", "offline", qos=1, retain=True)
        if self.broker.user:
            client.username_pw_set(self.broker.user, self.password)
        if self.broker.tls:
            client.tls_set(**self.tls_files)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Connect in the background: a broker that does not answer yet is tried again and again."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        self._thread.start()

    def close(self) -> None:
        """Say `offline` (retained) and leave."""
        self._stop.set()
        self._thread.join(timeout=5)
        if self._connected:
            self._client.publish(f"{self.base}/available", "offline", qos=1, retain=True).wait_for_publish(2)
        self._client.disconnect()
        self._client.loop_stop()

    # ---- what the loop hands over (never blocks) ----
    def on_event(self, event: dict, picture=None) -> None:
        self.publish(f"{self.base}/events", json.dumps(event))
        if event["event"] in ("on", "off"):
            self.triggers[event["name"]] = "ON" if event["event"] == "on" else "OFF"
            self.publish(f"{self.base}/trigger/{object_id(event['name'])}", self.triggers[event["name"]], retain=True)
        if event["event"] in ("new", "end"):
            label = event["label"]
            self.labels[label] = max(0, self.labels.get(label, 0) + (1 if event["event"] == "new" else -1))
            self._announce_count(label)
            self.publish(f"{self.base}/count/{object_id(label)}", str(self.labels[label]), retain=True)
        if event["event"] in ("new", "on"):
            self.publish_snapshot()

    def on_result(self, result: dict) -> None:
        self.publish(f"{self.base}/result/{result['task'].strip('<>')}", json.dumps(result))

    def on_stats(self, stats: dict) -> None:
        self.publish(f"{self.base}/stats", json.dumps(stats))

    def publish_snapshot(self) -> None:
        self.publish(f"{self.base}/snapshot", None, retain=True)  # the JPEG is made on the sending thread

    def set_triggers(self, names: list[str]) -> None:
        """The triggers now configured: new ones announced (OFF), deleted ones removed from Home Assistant."""
        for name in names:
            self.triggers.setdefault(name, "OFF")
        for gone in set(self.triggers) - set(names):
            del self.triggers[gone]
            topic = self._config_topic("binary_sensor", f"trigger_{object_id(gone)}")
            self._announced.discard(topic)
            self.publish(topic, "", retain=True)
        self._announce_triggers()

    def publish(self, topic: str, payload, retain: bool = False) -> None:
        try:
            self._queue.put_nowait((topic, payload, retain))
        except queue.Full:
            self.counts["dropped"] += 1

    # ---- the sending thread ----
    def _send(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload, retain = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if payload is None:
                payload = self.snapshot()
                if payload is None:
                    continue
            if not self._connected:
                self.counts["dropped"] += 1
                continue
            info = self._client.publish(topic, payload, qos=0, retain=retain)
            self.counts["sent" if info.rc == 0 else "dropped"] += 1

    # ---- paho's callbacks (its network thread) ----
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.log(f"MQTT broker {self.broker.host}:{self.broker.port} refused the connection: {reason_code}")
            return
        if self._ever:
            self.counts["reconnects"] += 1
        self._ever = True
        self.log(f"MQTT connected to {self.broker.host}:{self.broker.port}")
        client.subscribe([(f"{self.base}/set/+", 1), (f"{self.settings.discovery_prefix}/status", 1)])
        self._connected = True
        self._announced.clear()
        self._announce()
        for name, state in self.triggers.items():
            self.publish(f"{self.base}/trigger/{object_id(name)}", state, retain=True)
        for label, count in self.labels.items():
            self.publish(f"{self.base}/count/{object_id(label)}", str(count), retain=True)
        self.publish(f"{self.base}/available", "online", retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._connected and not self._stop.is_set():
            self.log(f"MQTT broker {self.broker.host}:{self.broker.port} went away ({reason_code}); "
                     "reconnecting, events meanwhile are dropped and counted")
        self._connected = False

    def _on_message(self, client, userdata, message) -> None:
        topic, text = message.topic, message.payload.decode("utf-8", "replace")
        if topic == f"{self.settings.discovery_prefix}/status":
            if text == "online":
                self._announced.clear()
                self._announce()
            return
        name = topic.rsplit("/", 1)[-1]
        if name == "state" or name not in self.commands:
            return
        try:
            applied = self.commands[name](text)
            reply = {"command": name, "ok": True, "applied": applied}
        except (FlorenceEdgeError, ValueError) as exc:
            reply = {"command": name, "ok": False, "error": str(exc)}
        self.publish(f"{self.base}/set/state", json.dumps(reply))

    # ---- Home Assistant discovery ----
    def _config_topic(self, component: str, object_name: str) -> str:
        return f"{self.settings.discovery_prefix}/{component}/{self.node}/{object_name}/config"

    def _entity(self, component: str, object_name: str, config: dict) -> None:
        topic = self._config_topic(component, object_name)
        if topic in self._announced:
            return
        self._announced.add(topic)
        body = {"unique_id": f"{self.node}_{object_name}", "object_id": f"{self.node}_{object_name}",
                "device": self.device, "availability_topic": f"{self.base}/available", **config}
        self.publish(topic, json.dumps(body), retain=True)

    def _announce(self) -> None:
        self._entity("sensor", "inferred_fps", {
            "name": "Inferred frames per second", "state_topic": f"{self.base}/stats",
            "value_template": "{{ value_json.inferred_per_s }}", "unit_of_measurement": "fps",
            "state_class": "measurement"})
        self._entity("image", "snapshot", {"name": "Snapshot", "image_topic": f"{self.base}/snapshot",
                                           "content_type": "image/jpeg"})
        self._entity("event", "events", {
            "name": "Events", "state_topic": f"{self.base}/events", "event_types": list(EVENT_TYPES),
            "value_template": '{{ {"event_type": value_json.event, "name": value_json.name, '
                              '"label": value_json.label, "score": value_json.score} | to_json }}'})
        self._announce_triggers()
        for label in self.labels:
            self._announce_count(label)

    def _announce_triggers(self) -> None:
        for name in self.triggers:
            self._entity("binary_sensor", f"trigger_{object_id(name)}", {
                "name": name, "state_topic": f"{self.base}/trigger/{object_id(name)}", "payload_on": "ON",
                "payload_off": "OFF"})

    def _announce_count(self, label: str) -> None:
        self._entity("sensor", f"count_{object_id(label)}", {
            "name": f"{label} count", "state_topic": f"{self.base}/count/{object_id(label)}",
            "state_class": "measurement"})
