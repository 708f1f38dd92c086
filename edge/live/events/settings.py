"""Zones and triggers from settings (config files, the command line, `POST /config`), checked together
before a camera opens: one line naming the setting for the first thing wrong."""

from __future__ import annotations

from edge.errors import FlorenceEdgeError
from edge.live.events.stream import EventStream
from edge.live.events.tracks import TrackSettings
from edge.live.events.triggers import Trigger, make_trigger
from edge.live.events.zones import Zone, make_zone

_ZONE_KEYS = ("name", "points", "inertia", "loitering")


def zones_from(tables, where: str = "zones") -> list[Zone]:
    """Zones from tables ({name, points, inertia?, loitering?}); names must differ."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise FlorenceEdgeError(f"{where}: a list of zones ({{name, points}} each) is needed")
    zones = []
    for i, table in enumerate(tables):
        unknown = set(table) - set(_ZONE_KEYS)
        if unknown:
            raise FlorenceEdgeError(f"{where} #{i + 1}: unknown key {sorted(unknown)[0]!r}; "
                                    f"known: {', '.join(_ZONE_KEYS)}")
        zones.append(make_zone(table.get("name"), table.get("points"), table.get("inertia", 3),
                               table.get("loitering", 0.0), f"{where} #{i + 1}"))
    _unique([z.name for z in zones], where)
    return zones


def triggers_from(tables, model, zones: list[Zone], where: str = "triggers") -> list[Trigger]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise FlorenceEdgeError(f"{where}: a list of triggers ({{name, text}} each) is needed")
    by_name = {z.name: z for z in zones}
    triggers = [make_trigger(table, model, by_name, f"{where} #{i + 1}") for i, table in enumerate(tables)]
    _unique([t.name for t in triggers], where)
    return triggers


def _unique(names: list[str], where: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise FlorenceEdgeError(f"{where}: the name {name!r} is used twice")
        seen.add(name)


def event_stream(settings, model) -> EventStream:
    """The `EventStream` `live` runs with, from resolved settings (`edge.live.config`)."""
    zones = zones_from(settings.zones or [])
    triggers = triggers_from(settings.triggers or [], model, zones)
    tracking = TrackSettings(settings.track_hits, settings.track_expire, settings.track_distance,
                             settings.track_min_score)
    return EventStream(settings.camera_name, zones, triggers, tracking)
