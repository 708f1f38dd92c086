"""Zones: named polygons in relative (0-1) coordinates of the picture, checked once when set.

An object is in a zone when the bottom centre of its box (where it stands, as Frigate counts it)
lies inside the polygon. `ZoneSettings.inertia` inferred frames in a row inside before it counts
as entered (a box that grazes the edge once does not enter), and, with `loitering`, that many
seconds inside as well; it leaves on the first inferred frame its point is outside.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import FlorenceEdgeError


@dataclass(frozen=True)
class Zone:
    name: str
    points: tuple[tuple[float, float], ...]  # (x, y) fractions of the picture's width and height
    inertia: int = 3
    loitering: float = 0.0  # s inside before the object counts as in the zone

    def contains(self, x: float, y: float) -> bool:
        """Whether a relative point lies inside (even-odd rule; a point on an edge may go either way)."""
        inside = False
        pts = self.points
        for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    def holds(self, box, size: tuple[int, int]) -> bool:
        """Whether a pixel box (x1, y1, x2, y2) of a picture of `size` stands in the zone."""
        x, y = anchor(box)
        return self.contains(x / size[0], y / size[1])

    def as_json(self) -> dict:
        return {"name": self.name, "points": [list(p) for p in self.points], "inertia": self.inertia,
                "loitering": self.loitering}


def anchor(box) -> tuple[float, float]:
    """The point of a box that places an object: its bottom centre."""
    return (box[0] + box[2]) / 2, box[3]


def make_zone(name, points, inertia=3, loitering=0.0, where: str = "zone") -> Zone:
    """A checked `Zone`; one-line `FlorenceEdgeError` naming `where` (the setting) otherwise."""
    if not isinstance(name, str) or not name.strip() or not name.replace("_", "").replace("-", "").isalnum():
        raise FlorenceEdgeError(f"{where}: a zone's name is letters, digits, '-' and '_', got {name!r}")
    if isinstance(points, str):
        points = parse_points(points, where)
    try:
        pts = tuple((float(x), float(y)) for x, y in points)
    except (TypeError, ValueError):
        raise FlorenceEdgeError(f"{where}: points are [x, y] pairs of numbers, got {points!r}") from None
    if len(pts) < 3:
        raise FlorenceEdgeError(f"{where}: zone {name!r} needs at least three points, got {len(pts)}")
    if any(not (0.0 <= v <= 1.0) for p in pts for v in p):
        raise FlorenceEdgeError(f"{where}: zone {name!r} has a point outside 0-1 (points are fractions of the "
                                "picture's width and height)")
    if _self_intersects(pts):
        raise FlorenceEdgeError(f"{where}: zone {name!r} crosses itself; list its corners in order around it")
    if abs(_area(pts)) < 1e-6:
        raise FlorenceEdgeError(f"{where}: zone {name!r} has no area")
    if isinstance(inertia, bool) or not isinstance(inertia, int) or not 1 <= inertia <= 100:
        raise FlorenceEdgeError(f"{where}: zone {name!r}: inertia is a whole number of frames, 1-100")
    if isinstance(loitering, bool) or not isinstance(loitering, (int, float)) or loitering < 0:
        raise FlorenceEdgeError(f"{where}: zone {name!r}: loitering is seconds, 0 or more")
    return Zone(name, pts, inertia, float(loitering))


def parse_points(text: str, where: str) -> list[tuple[float, float]]:
    """'x,y x,y x,y' (or ';'-separated) -> pairs."""
    try:
        pairs = [p.split(",") for p in text.replace(";", " ").split()]
        return [(float(x), float(y)) for x, y in pairs]
    except ValueError:
        raise FlorenceEdgeError(f"{where}: points are written 'x,y x,y x,y' (fractions 0-1), got {text!r}") from None


def _area(pts) -> float:
    return 0.5 * sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]))


def _self_intersects(pts) -> bool:
    edges = list(zip(pts, pts[1:] + pts[:1]))
    n = len(edges)
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # neighbours share a corner
            if _cross(*edges[i], *edges[j]):
                return True
    return False


def _cross(a, b, c, d) -> bool:
    """Whether segments ab and cd intersect (touching counts)."""
    def orient(p, q, r):
        v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
        return (v > 1e-12) - (v < -1e-12)

    def on(p, q, r):
        return min(p[0], r[0]) <= q[0] <= max(p[0], r[0]) and min(p[1], r[1]) <= q[1] <= max(p[1], r[1])

    o1, o2, o3, o4 = orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b)
    if o1 != o2 and o3 != o4:
        return True
    return ((o1 == 0 and on(a, c, b)) or (o2 == 0 and on(a, d, b)) or (o3 == 0 and on(c, a, d))
            or (o4 == 0 and on(c, b, d)))


class ZonePresence:
    """One object's zones over time: which it is in, by each zone's inertia and loitering."""

    def __init__(self):
        self.inside_frames: dict[str, int] = {}  # zone -> inferred frames in a row inside
        self.since: dict[str, float] = {}  # zone -> when this run inside began (s)
        self.current: list[str] = []
        self.entered: list[str] = []  # every zone entered so far, in order

    def observe(self, zones, box, size, seconds: float) -> bool:
        """Update with a box seen on an inferred frame at `seconds`; True when `current` changed."""
        before = list(self.current)
        for zone in zones:
            if zone.holds(box, size):
                self.inside_frames[zone.name] = self.inside_frames.get(zone.name, 0) + 1
                self.since.setdefault(zone.name, seconds)
                settled = (self.inside_frames[zone.name] >= zone.inertia
                           and seconds - self.since[zone.name] >= zone.loitering)
                if settled and zone.name not in self.current:
                    self.current.append(zone.name)
                    if zone.name not in self.entered:
                        self.entered.append(zone.name)
            else:
                self.inside_frames.pop(zone.name, None)
                self.since.pop(zone.name, None)
                if zone.name in self.current:
                    self.current.remove(zone.name)
        names = {z.name for z in zones}
        self.current = [name for name in self.current if name in names]  # a zone removed by POST /config
        return self.current != before
