"""`live --mqtt` against a real broker: availability and the last will, events and trigger states,
the retained snapshot, Home Assistant discovery, commands, and a broker that goes away and comes back."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
BASE = "florence-edge/porch"


def start_live(bundle, clip, port, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "edge.cli", "live", "-m", str(bundle), "--source", str(clip), "-t", "OD",
         "--camera-name", "porch", "--trigger", "red=a red square", "--mqtt", f"mqtt://127.0.0.1:{port}",
         "--stats-every", "1", "--events-only", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def processed(stats: dict) -> int:
    return stats["inferred"] + stats["reused"]


def test_events_states_snapshot_and_discovery(demo_int8_bundle, walking_clip, broker, listener, subscribe):
    proc = start_live(demo_int8_bundle[0], walking_clip, broker.port)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "Traceback" not in err, err[-2000:]
    listener.wait(lambda t, p, r: t == f"{BASE}/available" and p == b"offline", what="offline at the end")
    topics = [m[0] for m in listener.messages]
    assert topics.index(f"{BASE}/available") < topics.index(f"{BASE}/events")
    events = [json.loads(p) for t, p, r in listener.messages if t == f"{BASE}/events"]
    assert [json.loads(line)["id"] for line in out.splitlines()] == [e["id"] for e in events]
    assert {e["event"] for e in events} >= {"new", "on"}
    assert b"ON" in [p for t, p, r in listener.messages if t == f"{BASE}/trigger/red"]
    # What a client that subscribes afterwards gets: the retained messages.
    late = subscribe()
    late.wait(lambda t, p, r: t == f"{BASE}/snapshot", what="the retained snapshot")
    time.sleep(1)
    retained = {t: p for t, p, r in late.messages if r}
    assert retained[f"{BASE}/available"] == b"offline" and retained[f"{BASE}/trigger/red"] in (b"ON", b"OFF")
    assert Image.open(io.BytesIO(retained[f"{BASE}/snapshot"])).size == (256, 256)
    configs = {t: json.loads(p) for t, p in retained.items() if t.startswith("homeassistant/")}
    node = "homeassistant/{}/florence_edge_porch/{}/config"
    trigger = configs[node.format("binary_sensor", "trigger_red")]
    assert trigger["state_topic"] == f"{BASE}/trigger/red" and (trigger["payload_on"], trigger["payload_off"]) == (
        "ON", "OFF")
    for config in configs.values():
        assert config["availability_topic"] == f"{BASE}/available" and config["unique_id"]
        assert config["device"]["identifiers"] == ["florence_edge_porch"] and config["device"]["sw_version"]
    assert configs[node.format("image", "snapshot")]["image_topic"] == f"{BASE}/snapshot"
    assert set(configs[node.format("event", "events")]["event_types"]) == {"new", "update", "end", "on", "off"}
    assert configs[node.format("sensor", "inferred_fps")]["state_topic"] == f"{BASE}/stats"
    assert any(t.startswith(f"{BASE}/count/") for t in topics)
    assert any(t == f"{BASE}/result/OD" for t in topics)


def test_the_last_will_says_offline_when_killed(demo_int8_bundle, walking_clip, broker, listener):
    proc = start_live(demo_int8_bundle[0], walking_clip, broker.port, "--loop")
    try:
        listener.wait(lambda t, p, r: t == f"{BASE}/available" and p == b"online", what="online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        listener.wait(lambda t, p, r: t == f"{BASE}/available" and p == b"offline", timeout=90,
                      what="the will")  # the broker notices the dead connection by its keepalive
    finally:
        proc.kill()


def test_commands_and_a_broker_that_comes_back(demo_int8_bundle, walking_clip, broker, listener):
    proc = start_live(demo_int8_bundle[0], walking_clip, broker.port, "--loop")
    try:
        listener.wait(lambda t, p, r: t == f"{BASE}/available" and p == b"online", what="online")
        listener.publish(f"{BASE}/set/tasks", "NOPE")
        refused = listener.wait(lambda t, p, r: t == f"{BASE}/set/state" and b"NOPE" in p, what="a refusal")
        assert json.loads(refused[0][1])["ok"] is False
        listener.publish(f"{BASE}/set/trigger", json.dumps({"name": "blue", "text": "a blue circle"}))
        listener.wait(lambda t, p, r: t == f"{BASE}/set/state" and b'"ok": true' in p, what="an ack")
        listener.wait(lambda t, p, r: t == "homeassistant/binary_sensor/florence_edge_porch/trigger_blue/config",
                      what="the new trigger's entity")
        listener.wait(lambda t, p, r: t == f"{BASE}/trigger/blue" and p == b"ON", what="the new trigger firing")
        before = len(listener.messages)
        up = json.loads(listener.wait(lambda t, p, r: t == f"{BASE}/stats", what="stats", since=before)[-1][1])
        broker.stop()
        time.sleep(4)
        broker.start()  # both clients reconnect by themselves
        listener.wait(lambda t, p, r: t == f"{BASE}/available" and p == b"online", what="online again", since=before)
        listener.wait(lambda t, p, r: t == f"{BASE}/trigger/blue", what="the states again", since=before)
        stats = listener.wait(lambda t, p, r: t == f"{BASE}/stats" and b'"reconnects": 1' in p, what="stats")
        back = json.loads(stats[-1][1])
        assert back["outputs"]["mqtt"]["sent"] > 0
        # The loop's frame rate across the outage is the one it had before (the clip's own 2 fps).
        rate = (processed(back) - processed(up)) / (back["seconds"] - up["seconds"])
        assert abs(rate - processed(up) / up["seconds"]) < 0.4 and abs(rate - 2.0) < 0.4, (rate, up, back)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    assert err.count("went away") == 1 and err.count("MQTT connected") == 2
