"""robfig/cron v3's standard parser (what Navidrome's scheduler used), and its schedules' walk.

The grammar, the value sets and every error text are ported from its ``parser.go`` (the texts are part
of what a plugin sees: a parse error traps the guest with them); the calendar walk is done by ``cronsim``
over the value sets robfig computed, with robfig's limits (five years, DST gaps walked in absolute time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from cronsim import CronSim, CronSimError

from pytest_wasmhost.gocompat import strings
from pytest_wasmhost.gocompat.strconv import NumError, atoi
from pytest_wasmhost.gocompat.time import (
    DurationError,
    LocalZone,
    LocationError,
    load_location,
    parse_duration,
)

__all__ = [
    "DOM",
    "DOW",
    "HOURS",
    "MINUTES",
    "MONTHS",
    "CronField",
    "CronPanic",
    "CronParseError",
    "CronSchedule",
    "EverySchedule",
    "Schedule",
    "parse_cron",
]

_NS = 1_000_000_000


class CronParseError(ValueError):
    """robfig's parser refused the expression; ``str()`` is its message (without our prefix)."""


class CronPanic(Exception):
    """robfig's parser panicked (``TZ=zone`` without a following space slices past the end).

    A Go panic inside a host function aborts the guest call just like a hard error, with the panic
    text and without the "failed to schedule" prefix.
    """


class Schedule(Protocol):
    """When a recurring job fires next, strictly after ``after`` (Unix seconds); None: never again."""

    def next_after(self, after: float) -> float | None: ...


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: int
    high: int
    names: Mapping[str, int] | None = None


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DOM = _Bounds(1, 31)
MONTHS = _Bounds(1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)})
DOW = _Bounds(0, 6, {name: i for i, name in enumerate(_DOW_NAMES)})


@dataclass(frozen=True, slots=True)
class CronField:
    """One field as robfig stores it: the values and the star bit (``*``/``?`` with step <= 1)."""

    values: frozenset[int]
    star: bool = False

    @classmethod
    def all(cls, bounds: _Bounds) -> CronField:
        return cls(frozenset(range(bounds.low, bounds.high + 1)), star=True)

    @classmethod
    def only(cls, value: int) -> CronField:
        return cls(frozenset((value,)))

    def text(self) -> str:
        """The field for cronsim: ``*`` exactly when robfig's star bit is set, else the value list."""
        return "*" if self.star else ",".join(str(v) for v in sorted(self.values))


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed 5-field expression or descriptor: robfig's SpecSchedule (seconds always 0)."""

    minute: CronField
    hour: CronField
    dom: CronField
    month: CronField
    dow: CronField
    zone: tzinfo

    def expression(self) -> str:
        """A 6-field cronsim expression with the seconds field robfig fills in ("0").

        Six fields also keep cronsim's Debian-cron DST special case off (it only applies to 5-field
        input): robfig steps through DST gaps and repeats in absolute time, as cronsim does without it.
        cronsim's day rule (DOM AND DOW when either field starts with ``*``, else OR) is robfig's rule
        once ``*`` is written exactly where robfig's star bit is set.
        """
        fields = (self.minute, self.hour, self.dom, self.month, self.dow)
        return "0 " + " ".join(f.text() for f in fields)

    def own_fields(self) -> tuple[CronField, ...]:
        """The fields this schedule holds alone (a descriptor's fields are shared by every job)."""
        parts = (self.minute, self.hour, self.dom, self.month, self.dow)
        return tuple(part for part in parts if id(part) not in _SHARED_FIELDS)

    def next_after(self, after: float) -> float | None:
        if not all(
            (self.minute.values, self.hour.values, self.dom.values, self.month.values, self.dow.values)
        ):
            return None  # a field like "," selects nothing: robfig never finds a time
        start = datetime.fromtimestamp(after, self.zone)
        year_limit = (start.replace(microsecond=0) + timedelta(seconds=1)).year + 5
        try:
            times = CronSim(self.expression(), start)
            found = next(times)
            # cronsim can stop on a wall time a DST gap skips (e.g. midnight in a zone that springs
            # forward at 00:00); robfig walks absolute time and never fires there: look further.
            while _nonexistent(found) and found.year <= year_limit:
                found = next(times)
        except (CronSimError, StopIteration):
            return None  # impossible dates (e.g. Feb 30): robfig's Next returns the zero time
        if found.year > year_limit:
            return None  # robfig gives up after five years; cronsim would search fifty
        return found.timestamp()


def _nonexistent(moment: datetime) -> bool:
    """True for a wall-clock time that a DST gap skips in its zone (it does not survive a round trip)."""
    assert moment.tzinfo is not None
    round_trip = moment.astimezone(UTC).astimezone(moment.tzinfo)
    return round_trip.replace(tzinfo=None) != moment.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class EverySchedule:
    """``@every <duration>``: robfig's ConstantDelaySchedule."""

    delay_ns: int

    @classmethod
    def of(cls, duration_ns: int) -> EverySchedule:
        # cron.Every: at least one second, and whole seconds only.
        duration_ns = max(duration_ns, _NS)
        return cls(duration_ns - duration_ns % _NS)

    def next_after(self, after: float) -> float | None:
        # Next(t) = t + delay - t.Nanosecond(): the next tick lands on a whole second.
        return math.floor(after) + self.delay_ns / _NS


_DESCRIPTORS: Mapping[str, tuple[CronField, CronField, CronField, CronField, CronField]] = {
    "@yearly": (
        CronField.only(0),
        CronField.only(0),
        CronField.only(1),
        CronField.only(1),
        CronField.all(DOW),
    ),
    "@monthly": (
        CronField.only(0),
        CronField.only(0),
        CronField.only(1),
        CronField.all(MONTHS),
        CronField.all(DOW),
    ),
    "@weekly": (
        CronField.only(0),
        CronField.only(0),
        CronField.all(DOM),
        CronField.all(MONTHS),
        CronField.only(0),
    ),
    "@daily": (
        CronField.only(0),
        CronField.only(0),
        CronField.all(DOM),
        CronField.all(MONTHS),
        CronField.all(DOW),
    ),
    "@hourly": (
        CronField.only(0),
        CronField.all(HOURS),
        CronField.all(DOM),
        CronField.all(MONTHS),
        CronField.all(DOW),
    ),
}
_ALIASES = {"@annually": "@yearly", "@midnight": "@daily"}
# Fields every descriptor schedule shares: they cost nothing per job.
_SHARED_FIELDS = frozenset(id(f) for group in _DESCRIPTORS.values() for f in group)


def parse_cron(spec: str, local: LocalZone) -> CronSchedule | EverySchedule:
    """robfig/cron v3 ``ParseStandard`` (Parser.Parse with Minute|Hour|Dom|Month|Dow|Descriptor).

    Raises CronParseError with robfig's message, or CronPanic where robfig panics.
    """
    if not spec:
        raise CronParseError("empty spec string")
    zone = local.tzinfo
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space, equals = spec.find(" "), spec.find("=")
        if space < 0:
            raise CronPanic("runtime error: slice bounds out of range [:-1]")
        zone = _location(spec[equals + 1 : space], local)
        spec = strings.trim_space(spec[space:])
    if spec.startswith("@"):
        return _parse_descriptor(spec, zone)
    fields = strings.fields(spec)
    if len(fields) != 5:
        raise CronParseError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    bounds = (MINUTES, HOURS, DOM, MONTHS, DOW)
    minute, hour, dom, month, dow = (_get_field(text, b) for text, b in zip(fields, bounds, strict=True))
    return CronSchedule(minute, hour, dom, month, dow, zone)


def _parse_descriptor(spec: str, zone: tzinfo) -> CronSchedule | EverySchedule:
    name = _ALIASES.get(spec, spec)
    if name in _DESCRIPTORS:
        return CronSchedule(*_DESCRIPTORS[name], zone=zone)
    every = "@every "
    if spec.startswith(every):
        try:
            return EverySchedule.of(parse_duration(spec[len(every) :]))
        except DurationError as exc:
            raise CronParseError(f"failed to parse duration {spec}: {exc}") from None
    raise CronParseError(f"unrecognized descriptor: {spec}")


def _get_field(text: str, bounds: _Bounds) -> CronField:
    """robfig getField: a comma list of ranges (empty items skipped, as strings.FieldsFunc does)."""
    values: set[int] = set()
    star = False
    for expr in (part for part in text.split(",") if part):
        part_values, part_star = _get_range(expr, bounds)
        values |= part_values
        star = star or part_star
    return CronField(frozenset(values), star)


def _get_range(expr: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    """robfig getRange: ``*``/``?`` | number ["-" number] with an optional "/" step, checks in its order."""
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = low_and_high[0] in ("*", "?")
    if star:
        start, end = bounds.low, bounds.high  # anything after "*-" is ignored, as in robfig
    else:
        start = _parse_int_or_name(low_and_high[0], bounds)
        if len(low_and_high) > 2:
            raise CronParseError(f"too many hyphens: {expr}")
        end = _parse_int_or_name(low_and_high[1], bounds) if len(low_and_high) == 2 else start
    step = 1
    if len(range_and_step) > 2:
        raise CronParseError(f"too many slashes: {expr}")
    if len(range_and_step) == 2:
        step = _must_parse_int(range_and_step[1])
        if len(low_and_high) == 1:
            end = bounds.high  # "N/step" means "N-max/step"
        star = star and step <= 1
    if start < bounds.low:
        raise CronParseError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronParseError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronParseError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronParseError(f"step of range should be a positive number: {expr}")
    return frozenset(range(start, end + 1, step)), star


def _parse_int_or_name(expr: str, bounds: _Bounds) -> int:
    if bounds.names is not None:
        named = bounds.names.get(strings.to_lower(expr))
        if named is not None:
            return named
    return _must_parse_int(expr)


def _must_parse_int(expr: str) -> int:
    try:
        number = atoi(expr)
    except NumError as exc:
        raise CronParseError(f"failed to parse int from {expr}: {exc}") from None
    if number < 0:
        raise CronParseError(f"negative number ({number}) not allowed: {expr}")
    return number


def _location(name: str, local: LocalZone) -> tzinfo:
    try:
        return load_location(name, local)
    except LocationError as exc:
        raise CronParseError(f"provided bad location {name}: {exc}") from None
