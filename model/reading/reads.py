"""A screening read and its parts (marks, findings, breast reads), arbitrations and readers: validated, as JSON."""

from __future__ import annotations

import math
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Iterator, NoReturn

from model.errors import ReadRefused
from model.reading.vocab import (ABNORMALITIES, DENSITIES, DEPTHS, DESCRIPTORS, OUTCOMES, RECALLS, SCALES, SIDES,
                                 VIEW_NAMES)

MAX_CASE_ID = 128
MAX_IMAGE_KEY = 1024  # a SOP Instance UID (64) or a file key, which may be a path
MAX_NAME = 80
MAX_NOTE = 2000
MAX_TECHNICAL_REASON = 500
MAX_SHORT_TEXT = 128  # model versions, AI score keys
MAX_ID = 64  # read_id / arbitration_id: the store's UUID4 hex (32)
MAX_SHOWN = 40  # a bad value is shown truncated to this many characters

_CODE = re.compile(r"[A-Z0-9]{2,8}")
_IDENTIFIER = re.compile(r"[A-Za-z0-9_-]+")


# -- one-line refusals --------------------------------------------------------------------------------------------

def _shown(value: Any) -> str:
    """The bad value as the reason shows it: its repr (one line: repr escapes line breaks), truncated."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _refuse(where: str, problem: str) -> NoReturn:
    raise ReadRefused(f"{where}: {problem}")


@contextmanager
def _part(where: str, word: str, number: int) -> Iterator[None]:
    """Re-raise a part's refusal with its place in the whole: "mark: ..." becomes "finding: mark 2: ..."."""
    try:
        yield
    except ReadRefused as error:
        text = str(error)
        if text.startswith(word + ":"):
            text = f"{word} {number}:{text[len(word) + 1:]}"
        raise ReadRefused(f"{where}: {text}") from None


def _one_of(where: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        _refuse(where, f"{name} {_shown(value)} is not one of {', '.join(allowed)}")
    return value


def _text(where: str, name: str, value: Any, limit: int, *, empty: bool = False, lines: bool = False) -> str:
    """Text of at most ``limit`` characters, without control characters (line breaks and tabs where ``lines``)."""
    if not isinstance(value, str):
        _refuse(where, f"{name} must be text, not {type(value).__name__}")
    if not empty and not value.strip():
        _refuse(where, f"{name} is empty")
    if len(value) > limit:
        _refuse(where, f"{name} {_shown(value)} is longer than {limit} characters")
    allowed = "\n\r\t" if lines else ""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        _refuse(where, f"{name} {_shown(value)} holds a control character")
    return value


def _code(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value):
        _refuse(where, f"{name} {_shown(value)} is not a reader code (2 to 8 upper-case letters or digits)")
    return value


def _identifier(where: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ID or not _IDENTIFIER.fullmatch(value):
        _refuse(where, f"{name} {_shown(value)} is not an identifier (letters, digits, - or _, at most {MAX_ID})")
    return value


def _time(where: str, name: str, value: Any, *, optional: bool = False) -> str | None:
    """An ISO 8601 time with its UTC offset, kept as written (so that it round-trips)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > 64:
        _refuse(where, f"{name} {_shown(value)} is not an ISO 8601 time")
    try:  # Python 3.10's fromisoformat does not read "Z"
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        _refuse(where, f"{name} {_shown(value)} is not an ISO 8601 time")
    if moment.utcoffset() is None:
        _refuse(where, f"{name} {_shown(value)} has no UTC offset")
    return value


def _number(where: str, name: str, value: Any, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _refuse(where, f"{name} {_shown(value)} is not a finite number")
    if not low <= value <= high:
        bounds = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        _refuse(where, f"{name} {_shown(value)} is not {bounds}")
    return float(value)


def _optional_number(where: str, name: str, value: Any) -> float | None:
    return None if value is None else _number(where, name, value)


def _sequence(where: str, name: str, value: Any) -> tuple:
    """A list or tuple as a tuple (JSON gives lists); a string is not a sequence of items here."""
    if not isinstance(value, (list, tuple)):
        _refuse(where, f"{name} must be a list, not {type(value).__name__}")
    return tuple(value)


def _mapping(where: str, name: str, value: Any) -> dict:
    """A copy of a dict: the caller may go on changing theirs, this object does not change."""
    if not isinstance(value, dict):
        _refuse(where, f"{name} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _json_object(where: str, cls: type, data: Any) -> dict:
    """``data`` as the keyword arguments of ``cls``: a JSON object with exactly its fields."""
    if not isinstance(data, dict):
        _refuse(where, f"must be a JSON object, not {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    missing = [name for name in names if name not in data]
    if missing:
        _refuse(where, f"missing key {', '.join(missing)}")
    extra = [key for key in data if key not in names]
    if extra:
        _refuse(where, f"unknown key {_shown(extra[0])}")
    return dict(data)


def _set(instance: object, name: str, value: Any) -> None:
    object.__setattr__(instance, name, value)  # normalising a frozen dataclass in __post_init__


# -- the records --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mark:
    """A point (one) or an outline (three or more points) a reader placed on one image, in the image's original
    pixel coordinates (x, y); ``image`` is the image's SOP Instance UID or file key, ``view`` like "LCC"."""

    image: str
    view: str
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        where = "mark"
        _text(where, "image", self.image, MAX_IMAGE_KEY)
        _one_of(where, "view", self.view, VIEW_NAMES)
        points = _sequence(where, "points", self.points)
        if len(points) in (0, 2):
            _refuse(where, f"points holds {len(points)} points: neither a point (1) nor an outline (3 or more)")
        normalised = []
        for number, point in enumerate(points, 1):
            point = _sequence(where, f"point {number}", point)
            if len(point) != 2:
                _refuse(where, f"point {number} {_shown(point)} is not (x, y)")
            normalised.append((_number(where, f"point {number} x", point[0]),
                               _number(where, f"point {number} y", point[1])))
        _set(self, "points", tuple(normalised))

    @property
    def is_outline(self) -> bool:
        return len(self.points) >= 3

    def to_json(self) -> dict:
        return {"image": self.image, "view": self.view, "points": [[x, y] for x, y in self.points]}

    @classmethod
    def from_json(cls, data: Any) -> Mark:
        return cls(**_json_object("mark", cls, data))


@dataclass(frozen=True)
class Finding:
    """One abnormality a reader marked: its type, the views that show it, a mark per image, optional BI-RADS
    descriptors, and the location derived from the marks (``model.reading.location``, not typed by the reader)."""

    abnormality: str
    views: tuple[str, ...]
    marks: tuple[Mark, ...]
    descriptors: dict[str, str] = field(default_factory=dict)
    clock_hour: int | None = None
    depth: str | None = None
    nipple_distance_mm: float | None = None
    size_mm: float | None = None

    def __post_init__(self) -> None:
        where = "finding"
        _one_of(where, "abnormality", self.abnormality, ABNORMALITIES)
        views = _sequence(where, "views", self.views)
        if not views:
            _refuse(where, "views is empty: name the views that show it")
        for view in views:
            _one_of(where, "view", view, VIEW_NAMES)
        if len(set(views)) != len(views):
            _refuse(where, f"views {_shown(views)} names a view twice")
        if len({view[0] for view in views}) > 1:
            _refuse(where, f"views {_shown(views)} are of both breasts")
        marks = _sequence(where, "marks", self.marks)
        for number, mark in enumerate(marks, 1):
            if not isinstance(mark, Mark):
                _refuse(where, f"mark {number} is a {type(mark).__name__}, not a Mark")
            if mark.view not in views:
                _refuse(where, f"mark {number}: view {mark.view!r} is not one of the finding's views "
                               f"{', '.join(views)}")
        descriptors = _mapping(where, "descriptors", self.descriptors)
        for key, value in descriptors.items():
            if not isinstance(key, str) or key not in DESCRIPTORS:
                _refuse(where, f"descriptor {_shown(key)} is not one of {', '.join(DESCRIPTORS)}")
            _one_of(where, key, value, DESCRIPTORS[key])
        hour = self.clock_hour
        if hour is not None and (isinstance(hour, bool) or not isinstance(hour, int) or not 1 <= hour <= 12):
            _refuse(where, f"clock_hour {_shown(hour)} is not a whole hour from 1 to 12")
        if self.depth is not None:
            _one_of(where, "depth", self.depth, DEPTHS)
        _set(self, "views", views)
        _set(self, "marks", marks)
        _set(self, "descriptors", descriptors)
        _set(self, "nipple_distance_mm", _optional_number(where, "nipple_distance_mm", self.nipple_distance_mm))
        _set(self, "size_mm", _optional_number(where, "size_mm", self.size_mm))

    def to_json(self) -> dict:
        return {"abnormality": self.abnormality, "views": list(self.views),
                "marks": [mark.to_json() for mark in self.marks], "descriptors": dict(self.descriptors),
                "clock_hour": self.clock_hour, "depth": self.depth,
                "nipple_distance_mm": self.nipple_distance_mm, "size_mm": self.size_mm}

    @classmethod
    def from_json(cls, data: Any) -> Finding:
        where = "finding"
        values = _json_object(where, cls, data)
        marks = []
        for number, mark in enumerate(_sequence(where, "marks", values["marks"]), 1):
            with _part(where, "mark", number):
                marks.append(Mark.from_json(mark))
        values["marks"] = tuple(marks)
        return cls(**values)


@dataclass(frozen=True)
class BreastRead:
    """A reader's opinion on one breast: the outcome (with the view to retake and why, for a technical recall), a
    score on the site's scale, the density, and the findings."""

    side: str
    outcome: str
    score: str
    scale: str
    density: str | None
    findings: tuple[Finding, ...] = ()
    technical_view: str | None = None
    technical_reason: str | None = None

    def __post_init__(self) -> None:
        _one_of("breast", "side", self.side, SIDES)
        where = f"breast {self.side}"
        _one_of(where, "outcome", self.outcome, OUTCOMES)
        _one_of(where, "scale", self.scale, tuple(SCALES))
        if not isinstance(self.score, str) or self.score not in SCALES[self.scale]:
            _refuse(where, f"score {_shown(self.score)} is not on the {self.scale} scale "
                           f"({', '.join(SCALES[self.scale])})")
        if self.density is not None:
            _one_of(where, "density", self.density, DENSITIES)
        findings = _sequence(where, "findings", self.findings)
        own_views = tuple(view for view in VIEW_NAMES if view[0] == self.side)
        for number, finding in enumerate(findings, 1):
            if not isinstance(finding, Finding):
                _refuse(where, f"finding {number} is a {type(finding).__name__}, not a Finding")
            for view in finding.views:
                if view not in own_views:
                    _refuse(where, f"finding {number}: view {view!r} is not a view of the {self.side} breast")
        if self.outcome == "technical":
            if self.technical_view not in own_views:
                _refuse(where, f"technical_view {_shown(self.technical_view)} is not one of {', '.join(own_views)} "
                               f"(a technical recall names the view to retake)")
            if self.technical_reason is None:
                _refuse(where, "technical_reason is missing (a technical recall says why the view is retaken)")
            _text(where, "technical_reason", self.technical_reason, MAX_TECHNICAL_REASON)
        else:
            for name in ("technical_view", "technical_reason"):
                if getattr(self, name) is not None:
                    _refuse(where, f"{name} {_shown(getattr(self, name))} is only for a technical recall, "
                                   f"not outcome {self.outcome!r}")
        _set(self, "findings", findings)

    @property
    def recalled(self) -> bool:
        """Recalled for a suspected abnormality (a technical recall is not)."""
        return self.outcome in RECALLS

    def to_json(self) -> dict:
        return {"side": self.side, "outcome": self.outcome, "score": self.score, "scale": self.scale,
                "density": self.density, "findings": [finding.to_json() for finding in self.findings],
                "technical_view": self.technical_view, "technical_reason": self.technical_reason}

    @classmethod
    def from_json(cls, data: Any) -> BreastRead:
        values = _json_object("breast", cls, data)
        side = values["side"]
        where = f"breast {side}" if side in SIDES else "breast"
        findings = []
        for number, finding in enumerate(_sequence(where, "findings", values["findings"]), 1):
            with _part(where, "finding", number):
                findings.append(Finding.from_json(finding))
        values["findings"] = tuple(findings)
        return cls(**values)


@dataclass(frozen=True)
class Read:
    """One reader's read of one case: both breasts, who and when, the AI that was on screen, and the read it
    replaces (a changed opinion is a new read; the store keeps both). ``read_id`` is set by the store."""

    case_id: str
    reader: str
    breasts: tuple[BreastRead, BreastRead]
    opened_at: str
    committed_at: str | None
    ai_model_version: str | None = None
    ai_scores: dict[str, float] = field(default_factory=dict)
    ai_shown: bool = False
    replaces: str | None = None
    read_id: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        where = "read"
        _text(where, "case_id", self.case_id, MAX_CASE_ID)
        _code(where, "reader", self.reader)
        breasts = _sequence(where, "breasts", self.breasts)
        for breast in breasts:
            if not isinstance(breast, BreastRead):
                _refuse(where, f"breasts holds a {type(breast).__name__}, not a BreastRead")
        sides = tuple(breast.side for breast in breasts)
        if sorted(sides) != list(SIDES):
            _refuse(where, f"breasts must be one L and one R breast, not {_shown(sides)}")
        if breasts[0].scale != breasts[1].scale:
            _refuse(where, f"the breasts are scored on two scales ({breasts[0].scale}, {breasts[1].scale})")
        _time(where, "opened_at", self.opened_at)
        _time(where, "committed_at", self.committed_at, optional=True)
        if self.ai_model_version is not None:
            _text(where, "ai_model_version", self.ai_model_version, MAX_SHORT_TEXT)
        scores = _mapping(where, "ai_scores", self.ai_scores)
        for key, value in scores.items():
            _text(where, "ai_scores key", key, MAX_SHORT_TEXT)
            scores[key] = _number(where, f"ai_scores[{key!r}]", value, 0.0, 1.0)
        if not isinstance(self.ai_shown, bool):
            _refuse(where, f"ai_shown {_shown(self.ai_shown)} is not true or false")
        _identifier(where, "replaces", self.replaces)
        _identifier(where, "read_id", self.read_id)
        _text(where, "note", self.note, MAX_NOTE, empty=True, lines=True)
        _set(self, "breasts", tuple(sorted(breasts, key=lambda breast: SIDES.index(breast.side))))
        _set(self, "ai_scores", scores)

    @classmethod
    def normal_both(cls, case_id: str, reader: str, opened_at: str, scale: str, density: str | None = None) -> Read:
        """"Normal both breasts": routine recall, score 1 (normal on either scale), no findings; not yet committed."""
        breasts = tuple(BreastRead(side, "routine", "1", scale, density) for side in SIDES)
        return cls(case_id, reader, breasts, opened_at, None)

    def breast(self, side: str) -> BreastRead:
        _one_of("read", "side", side, SIDES)
        return self.breasts[SIDES.index(side)]

    def recalled_sides(self) -> tuple[str, ...]:
        """The sides recalled for a suspected abnormality (not a technical recall)."""
        return tuple(breast.side for breast in self.breasts if breast.recalled)

    def to_json(self) -> dict:
        return {"case_id": self.case_id, "reader": self.reader,
                "breasts": [breast.to_json() for breast in self.breasts], "opened_at": self.opened_at,
                "committed_at": self.committed_at, "ai_model_version": self.ai_model_version,
                "ai_scores": dict(self.ai_scores), "ai_shown": self.ai_shown, "replaces": self.replaces,
                "read_id": self.read_id, "note": self.note}

    @classmethod
    def from_json(cls, data: Any) -> Read:
        values = _json_object("read", cls, data)
        # a breast's refusal already names the breast ("breast L: ...")
        values["breasts"] = tuple(BreastRead.from_json(breast)
                                  for breast in _sequence("read", "breasts", values["breasts"]))
        return cls(**values)


@dataclass(frozen=True)
class Arbitration:
    """The final outcome per breast ("L" and "R") of a discordant case, who decided (a reader code) and why;
    ``arbitration_id`` and ``decided_at`` are set by the store."""

    case_id: str
    arbiter: str
    outcomes: dict[str, str]
    reason: str
    decided_at: str | None = None
    replaces: str | None = None
    arbitration_id: str | None = None

    def __post_init__(self) -> None:
        where = "arbitration"
        _text(where, "case_id", self.case_id, MAX_CASE_ID)
        _code(where, "arbiter", self.arbiter)
        outcomes = _mapping(where, "outcomes", self.outcomes)
        if sorted(outcomes, key=str) != list(SIDES):
            _refuse(where, f"outcomes must name both breasts L and R, not {_shown(sorted(outcomes, key=str))}")
        for side in SIDES:
            _one_of(where, f"outcome {side}", outcomes[side], OUTCOMES)
        _text(where, "reason", self.reason, MAX_NOTE, lines=True)
        _time(where, "decided_at", self.decided_at, optional=True)
        _identifier(where, "replaces", self.replaces)
        _identifier(where, "arbitration_id", self.arbitration_id)
        _set(self, "outcomes", {side: outcomes[side] for side in SIDES})

    def to_json(self) -> dict:
        return {"case_id": self.case_id, "arbiter": self.arbiter, "outcomes": dict(self.outcomes),
                "reason": self.reason, "decided_at": self.decided_at, "replaces": self.replaces,
                "arbitration_id": self.arbitration_id}

    @classmethod
    def from_json(cls, data: Any) -> Arbitration:
        return cls(**_json_object("arbitration", cls, data))


@dataclass(frozen=True)
class Reader:
    """A reader the site keeps: a short code (2 to 8 upper-case letters or digits) and a name."""

    code: str
    name: str

    def __post_init__(self) -> None:
        _code("reader", "code", self.code)
        _text("reader", "name", self.name, MAX_NAME)

    def to_json(self) -> dict:
        return {"code": self.code, "name": self.name}

    @classmethod
    def from_json(cls, data: Any) -> Reader:
        return cls(**_json_object("reader", cls, data))
