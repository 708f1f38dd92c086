"""Zones: a point-in-polygon by the box's bottom centre, checked shapes, inertia and loitering."""

from __future__ import annotations

import pytest

from edge.errors import FlorenceEdgeError
from edge.live.events.zones import ZonePresence, make_zone

LEFT = [(0, 0), (0.5, 0), (0.5, 1), (0, 1)]
SIZE = (200, 100)


def test_an_object_is_in_a_zone_by_its_bottom_centre():
    zone = make_zone("left", LEFT)
    assert zone.holds((10, 10, 90, 50), SIZE)  # bottom centre (50, 50): x 0.25
    assert not zone.holds((90, 10, 130, 50), SIZE)  # bottom centre x 110 of 200: 0.55
    assert zone.holds((60, 0, 100, 99), SIZE)  # top-left outside, bottom centre (80, 99) inside


def test_a_concave_zone():
    ell = make_zone("ell", [(0, 0), (1, 0), (1, 0.2), (0.2, 0.2), (0.2, 1), (0, 1)])
    assert ell.contains(0.1, 0.9) and ell.contains(0.9, 0.1)
    assert not ell.contains(0.5, 0.5)


@pytest.mark.parametrize("points, message", [
    ([(0, 0), (1, 1)], "needs at least three points"),
    ([(0, 0), (1.2, 0), (1, 1)], "outside 0-1"),
    ([(0, 0), (1, 1), (1, 0), (0, 1)], "crosses itself"),
    ([(0, 0), (0.5, 0.5), (1, 1)], "no area"),
    ("0,0 1,x 1,1", "points are written"),
])
def test_bad_zones_are_one_line_naming_the_setting(points, message):
    with pytest.raises(FlorenceEdgeError, match=message) as err:
        make_zone("z", points, where="--zone")
    assert str(err.value).startswith("--zone") and "\n" not in str(err.value)


def test_bad_names_and_numbers():
    for name in ("", "a b", None):
        with pytest.raises(FlorenceEdgeError, match="name"):
            make_zone(name, LEFT)
    with pytest.raises(FlorenceEdgeError, match="inertia"):
        make_zone("z", LEFT, inertia=0)
    with pytest.raises(FlorenceEdgeError, match="loitering"):
        make_zone("z", LEFT, loitering=-1)


def test_entering_takes_inertia_frames_and_leaving_one():
    zone = make_zone("left", LEFT, inertia=3)
    presence = ZonePresence()
    inside, outside = (10, 10, 50, 50), (150, 10, 190, 50)
    changes = [presence.observe([zone], box, SIZE, t) for t, box in
               enumerate([inside, inside, inside, inside, outside, inside])]
    assert changes == [False, False, True, False, True, False]
    assert presence.current == [] and presence.entered == ["left"]


def test_loitering_needs_seconds_inside_as_well():
    zone = make_zone("door", LEFT, inertia=1, loitering=5)
    presence = ZonePresence()
    box = (10, 10, 50, 50)
    assert [presence.observe([zone], box, SIZE, t) for t in (0, 2, 4, 6)] == [False, False, False, True]
