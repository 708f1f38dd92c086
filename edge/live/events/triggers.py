"""Text triggers: "tell me when a red umbrella appears", answered by grounding the phrase on every
inferred frame (the frame's one vision run serves every task and trigger).

A grounding model answers something for any phrase, present or not, so a phrase is *found* only
when a box it gives (1) scores at least `min_score` (`edge.confidence`), (2) stands in the
trigger's zone if it has one, and (3) passes the check: with `check = "category"` (the default)
the model is asked REGION_TO_CATEGORY about that box, and every word of the category it names
must be in the phrase ("red circle" for "a red circle"; "blue circle" for it fails); with
`check = "none"`, the box's own label must agree so. The check runs only for boxes that passed
(1) and (2), best first, and each box's category is asked once a frame for all triggers.

A trigger turns `on` once found on `frames` inferred frames in a row, `off` once it has not been
found for `clear_after` seconds, and cannot turn on again within `cooldown` seconds of its last
`off`. A reused frame (unchanged scene) keeps what the last inferred frame found, without counting
toward `frames`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.draw import shapes
from edge.errors import FlorenceEdgeError
from edge.live.events.zones import Zone

GROUNDING = "<CAPTION_TO_PHRASE_GROUNDING>"
DETECTION = "<OD>"
CATEGORY = "<REGION_TO_CATEGORY>"
CHECKS = ("category", "none")
CHECKED_BOXES = 4  # REGION_TO_CATEGORY asked about at most this many boxes per trigger and frame
_FILLER = {"a", "an", "the", "with", "of", "in", "on", "at", "to", "and", "or", "is", "are", "some", "there",
           "this", "that", "its", "it", "by", "near", "for", "from", "into"}


@dataclass(frozen=True)
class Trigger:
    name: str
    text: str
    zone: str | None = None
    frames: int = 2  # inferred frames in a row
    clear_after: float = 5.0  # s not found before it clears
    cooldown: float = 30.0  # s after an `off` before it can fire again
    min_score: float = 0.5
    check: str = "category"

    def as_json(self) -> dict:
        return {"name": self.name, "text": self.text, "zone": self.zone, "frames": self.frames,
                "clear_after": self.clear_after, "cooldown": self.cooldown, "min_score": self.min_score,
                "check": self.check}


FIELDS = tuple(Trigger.__dataclass_fields__)


def make_trigger(fields: dict, model, zones: dict[str, Zone], where: str = "trigger") -> Trigger:
    """A checked `Trigger` from a config table / JSON object; one-line `FlorenceEdgeError` naming the
    setting otherwise. `model` checks that the phrase fits the bundle's prompt."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise FlorenceEdgeError(f"{where}: unknown key {sorted(unknown)[0]!r}; known: {', '.join(FIELDS)}")
    name, text = fields.get("name"), fields.get("text")
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise FlorenceEdgeError(f"{where}: a trigger's name is letters, digits, '-' and '_', got {name!r}")
    where = f"{where} {name!r}"
    if not isinstance(text, str) or not text.strip():
        raise FlorenceEdgeError(f"{where}: the text to look for is empty")
    zone = fields.get("zone")
    if zone is not None and zone not in zones:
        known = ", ".join(zones) or "none are set"
        raise FlorenceEdgeError(f"{where}: unknown zone {zone!r} (zones: {known})")
    trigger = Trigger(name, text.strip(), zone, **{k: fields[k] for k in FIELDS[3:] if k in fields})
    _check_numbers(trigger, where)
    try:
        model.prepare(GROUNDING, trigger.text)
    except FlorenceEdgeError as exc:
        raise FlorenceEdgeError(f"{where}: {exc}") from None
    return trigger


def _check_numbers(t: Trigger, where: str) -> None:
    if isinstance(t.frames, bool) or not isinstance(t.frames, int) or not 1 <= t.frames <= 1000:
        raise FlorenceEdgeError(f"{where}: frames is a whole number of inferred frames, 1-1000")
    for key in ("clear_after", "cooldown"):
        value = getattr(t, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FlorenceEdgeError(f"{where}: {key} is seconds, 0 or more")
    if isinstance(t.min_score, bool) or not isinstance(t.min_score, (int, float)) or not 0 <= t.min_score <= 1:
        raise FlorenceEdgeError(f"{where}: min_score is a number from 0 to 1")
    if t.check not in CHECKS:
        raise FlorenceEdgeError(f"{where}: check is one of {', '.join(CHECKS)}, got {t.check!r}")


def parse_option(text: str) -> dict:
    """`--trigger NAME=TEXT` -> {"name", "text"}."""
    name, sep, phrase = text.partition("=")
    if not sep:
        raise FlorenceEdgeError(f"--trigger expects NAME=TEXT, got {text!r}")
    return {"name": name.strip(), "text": phrase}


@dataclass
class Finding:
    """What one inferred frame showed for a trigger: the best box that passed (or the best that did
    not), its score, and the category the check heard (None: not asked)."""

    found: bool
    box: tuple | None = None
    score: float = 0.0
    category: str | None = None

    def as_json(self) -> dict:
        return {"found": self.found, "box": None if self.box is None else [round(v, 1) for v in self.box],
                "score": self.score, "category": self.category}


def words(text: str) -> set[str]:
    """Content words, lower case, a plural's 's' dropped."""
    out = set()
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word not in _FILLER:
            out.add(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return out


def agrees(category: str, phrase: str) -> bool:
    """The check: a category that names something, every word of it in the phrase."""
    named = words(category)
    return bool(named) and named <= words(phrase)


class FrameLook:
    """One inferred frame's answers for its triggers. Candidates for a phrase are the boxes the
    grounding task gives it whose label agrees with the phrase, and the frame's detections (OD):
    a grounding model that names what it sees rather than what it was asked (the demo model does)
    still finds the phrase among the detections. Detections and each box's category are asked once
    a frame, however many triggers there are."""

    def __init__(self, model, encoded, size, options: dict, detections=None):
        self.model, self.encoded, self.size, self.options = model, encoded, size, options
        self._detections = detections  # [(score, box, label)] when the loop ran OD already
        self._categories: dict[tuple, str] = {}

    def detections(self) -> list[tuple[float, tuple, str]]:
        if self._detections is None:
            result = self.model.run(self.encoded, DETECTION, **self.options)
            answer = result.parsed[DETECTION]
            self._detections = scored_boxes(answer, result.scores)
        return self._detections

    def category(self, box) -> str:
        key = tuple(box)
        if key not in self._categories:
            self._categories[key] = self.model.run(self.encoded, CATEGORY, region=box,
                                                   **self.options).parsed[CATEGORY]
        return self._categories[key]

    def look(self, trigger: Trigger, zone: Zone | None) -> Finding:
        """Whether the trigger's phrase is in this frame (see the module's doc)."""
        result = self.model.run(self.encoded, GROUNDING, trigger.text, **self.options)
        grounded = [c for c in scored_boxes(result.parsed[GROUNDING], result.scores) if agrees(c[2], trigger.text)]
        candidates = sorted(grounded + self.detections(), key=lambda c: -c[0])
        best = Finding(False, tuple(candidates[0][1]), candidates[0][0]) if candidates else Finding(False)
        checked = 0
        for score, box, label in candidates:
            if score < trigger.min_score or (zone is not None and not zone.holds(box, self.size)):
                continue
            if trigger.check == "none":
                if agrees(label, trigger.text):
                    return Finding(True, tuple(box), score)
                continue
            if checked == CHECKED_BOXES:
                break
            checked += 1
            category = self.category(box)
            if agrees(category, trigger.text):
                return Finding(True, tuple(box), score, category)
            best = Finding(False, tuple(box), score, category)
        return best


def scored_boxes(answer: dict, scores: dict) -> list[tuple[float, tuple, str]]:
    """(score, box, label) of a box answer's boxes that have an area (a model can give x2 < x1)."""
    return [(s.score, s.coords, s.label) for s in shapes(answer, scores) if s.kind == "box" and has_area(s.coords)]


def has_area(box) -> bool:
    return box[0] < box[2] and box[1] < box[3]


class TriggerState:
    """One trigger's on/off state over frames; `observe` says when it turns."""

    def __init__(self, trigger: Trigger):
        self.trigger = trigger
        self.on = False
        self.streak = 0  # inferred frames in a row found
        self.last_found: float | None = None  # source s
        self.last_off: float | None = None
        self.finding = Finding(False)
        self.since_time: float | None = None  # wall clock of the `on`
        self.firing = ""  # the id of the newest `on` and its `off`
        self.found_now = False  # the newest inferred frame found it
        self.cooled = True  # past the cooldown of the last `off`

    def observe(self, finding: Finding | None, seconds: float) -> str | None:
        """`finding` of an inferred frame, or None for a reused one; returns "on", "off" or None."""
        t = self.trigger
        if finding is not None:
            self.found_now = finding.found
            if finding.found or not self.on:
                self.finding = finding
            self.streak = self.streak + 1 if finding.found else 0
        if self.found_now:
            self.last_found = seconds
        self.cooled = self.last_off is None or seconds - self.last_off >= t.cooldown
        if not self.on and finding is not None and self.streak >= t.frames and self.cooled:
            self.on = True
            return "on"
        if self.on and (self.last_found is None or seconds - self.last_found > t.clear_after):
            self.on, self.last_off = False, seconds
            return "off"
        return None
