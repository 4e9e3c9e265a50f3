"""Host service ``scheduler`` (spec/services/scheduler.md): one-time and cron jobs, and the host's wall clock.

Every plugin of a scope shares one :class:`SchedulerEngine` (``env.shared("scheduler")``), keyed by the
pair (plugin id, schedule id): the original's internal id ``<pluginID>:<schedule id>`` is only shown, so
plugin ``a`` schedule ``b:c`` and plugin ``a:b`` schedule ``c`` stay two schedules. Firing is explicit:
:meth:`SchedulerEngine.run_due` delivers every job due at or before "now" in due order; tests advance the
clock and call it, production calls :meth:`SchedulerEngine.start` for a thread that does the same in real
time.

Cron expressions follow robfig/cron v3's default parser (what Navidrome's scheduler used): the
grammar, the value sets and every error text are ported from its ``parser.go`` (the texts are part of
what a plugin sees: a parse error traps the guest with them); the calendar walk is done by ``cronsim``
over the value sets robfig computed. Known defects of the original are fixed (spec "Known defects"):
an invalid replacement expression leaves the old schedule alone, and each firing is bound to its own
job object, so a replaced or cancelled job never fires.

Options (:class:`SchedulerOptions`, ``HostOptions.scheduler``): ``run`` (production runtimes set it)
starts the firing thread; ``timezone`` overrides the process's ``TZ`` for this scope and is read exactly
like ``TZ`` (``""`` or ``"UTC"`` -> UTC, a zone name, ``:name``, or an absolute path;
an unloadable value -> UTC). Without it the local zone follows Go's rules on the real ``TZ`` and
``/etc/localtime``. It decides ``time_now``'s offset and zone name and the zone of cron expressions
without a ``CRON_TZ=`` prefix.

Caps (the original had none; ``HostOptions.scheduler``): ``plugin_max_jobs`` (default 10000) and
``plugin_max_bytes`` (16 MiB) per plugin, ``max_jobs`` (50000) and ``max_bytes`` (64 MiB) for the scope,
where a job costs what the process spends on it (:func:`job_size`). A schedule past a cap is refused and
nothing changes (a replacement leaves the old schedule alone): the plugin gets a ``ScheduleResponse``
without a ``schedule_id`` (the original always returned one; its wire has no error field), the
transcript the reason, and the test one warning per plugin and cap.
"""

from __future__ import annotations

import functools
import heapq
import logging
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.proto import api_pb2, scheduler_pb2
from pytest_wasmhost.host.base import (
    Cap,
    CapWarnings,
    HostEnvironment,
    HostFunction,
    HostHardError,
    HostService,
    ServiceContext,
    SoftError,
    check_positive,
)

log = logging.getLogger("pytest_wasmhost.host.scheduler")

SERVICE = "scheduler"
CALLBACK_EXPORT = "scheduler_callback_on_scheduler_callback"
NOT_FOUND = "schedule not found"

# go-nanoid's default alphabet and the length the original asked for (gonanoid.New(10)).
NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NANOID_SIZE = 10

JobType = Literal["one-time", "recurring"]
Outcome = Literal["ok", "error"]

_NS = 1_000_000_000


def new_schedule_id() -> str:
    """A 10-character NanoID over the original's alphabet (cryptographically random, like nanoid)."""
    return "".join(secrets.choice(NANOID_ALPHABET) for _ in range(NANOID_SIZE))


# --------------------------------------------------------------------------------------------------
# Go compatibility: the pieces of Go's standard library whose behaviour shows through error texts.
# --------------------------------------------------------------------------------------------------

# unicode.IsSpace, which strings.Fields and strings.TrimSpace use. Python's str.split() also splits
# on U+001C..U+001F, which Go keeps inside a field.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
_GO_SPACE += "\u2028\u2029\u202f\u205f\u3000"
_GO_SPACE_RUN = re.compile(f"[{re.escape(_GO_SPACE)}]+")
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_fields(text: str) -> list[str]:
    return [part for part in _GO_SPACE_RUN.split(text) if part]


def _go_trim_space(text: str) -> str:
    return text.strip(_GO_SPACE)


def _go_lower(text: str) -> str:
    # Go lower-cases rune by rune (simple case mapping); Python's full mapping turns U+0130 into two runes.
    return text.replace("\u0130", "i").lower()


def _strconv_quote(text: str) -> str:
    """strconv.Quote: Go-syntax double-quoted string (printable runes kept, the rest escaped)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():  # same classes as unicode.IsPrint: L, M, N, P, S and ASCII space
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _time_quote(text: str) -> str:
    """The time package's own quote(): every byte of a non-ASCII or control rune as \\xNN."""
    out = ['"']
    for ch in text:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{byte:02x}" for byte in ch.encode())
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    out.append('"')
    return "".join(out)


class _AtoiError(Exception):
    pass


def _go_atoi(text: str) -> int:
    """strconv.Atoi for a 64-bit int; raises with the error text Go would give."""
    body, negative = text, False
    if body[:1] in ("+", "-"):
        negative, body = body[0] == "-", body[1:]
    if not body:
        raise _AtoiError(f"strconv.Atoi: parsing {_strconv_quote(text)}: invalid syntax")
    value = 0
    for ch in body:  # the first problem met while scanning wins, as in ParseUint
        if not "0" <= ch <= "9":
            raise _AtoiError(f"strconv.Atoi: parsing {_strconv_quote(text)}: invalid syntax")
        value = value * 10 + ord(ch) - 48
        if value >= 1 << 64:
            break
    if value >= 1 << 63 and not (negative and value == 1 << 63):
        raise _AtoiError(f"strconv.Atoi: parsing {_strconv_quote(text)}: value out of range")
    return -value if negative else value


class GoDurationError(ValueError):
    """time.ParseDuration refused the text; ``str()`` is Go's message."""


_DURATION_UNITS: Mapping[bytes, int] = {
    b"ns": 1,
    b"us": 1_000,
    "µs".encode(): 1_000,  # U+00B5 micro sign
    "μs".encode(): 1_000,  # U+03BC Greek mu
    b"ms": 1_000_000,
    b"s": _NS,
    b"m": 60 * _NS,
    b"h": 3600 * _NS,
}


def parse_go_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds: ``1h30m``, ``41s``, ``1.5h``, ``300ms``, ``-2µs``.

    Hand-written because no Python library parses Go's syntax: ``@every`` takes exactly what Go
    accepts, with its overflow rules, float rounding of fractions and error texts (a plugin sees
    them), so this is a line-by-line port of Go's implementation over the UTF-8 bytes.
    """
    rest = text.encode()
    negative = False
    if rest[:1] in (b"-", b"+"):
        negative, rest = rest[:1] == b"-", rest[1:]
    if rest == b"0":
        return 0
    if not rest:
        raise _duration_error("invalid duration", text)
    total = 0
    while rest:
        value, rest = _duration_term(rest, text)
        total += value
        if total > 1 << 63:
            raise _duration_error("invalid duration", text)
    if negative:
        return -total
    if total > (1 << 63) - 1:
        raise _duration_error("invalid duration", text)
    return total


def _duration_term(rest: bytes, text: str) -> tuple[int, bytes]:
    """One ``[0-9]*(.[0-9]*)?unit`` term of a duration: its nanoseconds and what follows it."""
    if not (rest[:1] == b"." or rest[:1].isdigit()):
        raise _duration_error("invalid duration", text)
    whole = _leading_digits(rest)
    rest = rest[len(whole) :]
    value = _leading_int(whole)
    if value is None:
        raise _duration_error("invalid duration", text)
    fraction, scale, post = 0, 1.0, False
    if rest[:1] == b".":
        decimals = _leading_digits(rest[1:])
        rest, post = rest[1 + len(decimals) :], bool(decimals)
        fraction, scale = _leading_fraction(decimals)
    if not whole and not post:
        raise _duration_error("invalid duration", text)
    unit_len = next((i for i, byte in enumerate(rest) if byte == 0x2E or 0x30 <= byte <= 0x39), len(rest))
    if unit_len == 0:
        raise _duration_error("missing unit in duration", text)
    unit_text, rest = rest[:unit_len], rest[unit_len:]
    unit = _DURATION_UNITS.get(unit_text)
    if unit is None:
        raise _duration_error(f"unknown unit {_time_quote(unit_text.decode())} in duration", text)
    if value > (1 << 63) // unit:
        raise _duration_error("invalid duration", text)
    value *= unit
    if fraction > 0:
        value += int(float(fraction) * (float(unit) / scale))  # Go converts through float64 too
        if value > 1 << 63:
            raise _duration_error("invalid duration", text)
    return value, rest


def _leading_digits(data: bytes) -> bytes:
    end = next((i for i, byte in enumerate(data) if not 0x30 <= byte <= 0x39), len(data))
    return data[:end]


def _leading_int(digits: bytes) -> int | None:
    """Go's leadingInt: the value, or None once it passes 1<<63 (int() would also choke on 5000 digits)."""
    value = 0
    for byte in digits:
        value = value * 10 + byte - 0x30
        if value > 1 << 63:
            return None
    return value


def _leading_fraction(digits: bytes) -> tuple[int, float]:
    """Go's leadingFraction: accumulate while it fits, then only skip digits (precision stops)."""
    value, scale = 0, 1.0
    for byte in digits:
        nxt = value * 10 + byte - 0x30
        if value > ((1 << 63) - 1) // 10 or nxt > 1 << 63:
            break
        value, scale = nxt, scale * 10
    return value, scale


def _duration_error(message: str, text: str) -> GoDurationError:
    return GoDurationError(f"time: {message} {_time_quote(text)}")


# --------------------------------------------------------------------------------------------------
# Time zones, as Go's time package finds them.
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalZone:
    """The host's local zone: the name Go's ``time.Local`` reports and the zone itself."""

    name: str
    tzinfo: tzinfo


UTC_ZONE = LocalZone("UTC", UTC)


@functools.lru_cache(maxsize=64)
def resolve_local_zone(tz: str | None, localtime: str = "/etc/localtime") -> LocalZone:
    """Go's initLocal: ``tz`` is the value of ``TZ`` (None when unset), ``localtime`` the system zone file.

    Unset -> the zone file, named ``Local``; ``""``/``"UTC"``/unloadable -> ``UTC``; an optional
    leading ``:`` is dropped; an absolute path is a zone file named by its path (``Local`` for
    ``/etc/localtime``); otherwise an IANA name, named as given.
    """
    if tz is None:
        system = _zone_from_file(localtime)
        return LocalZone("Local", system) if system is not None else UTC_ZONE
    name = tz[1:] if tz.startswith(":") else tz
    if name.startswith("/"):
        from_file = _zone_from_file(name)
        if from_file is not None:
            return LocalZone("Local" if name == "/etc/localtime" else name, from_file)
    elif name not in ("", "UTC"):
        try:
            return LocalZone(name, ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    return UTC_ZONE


def _zone_from_file(path: str) -> ZoneInfo | None:
    try:
        with open(path, "rb") as handle:
            return ZoneInfo.from_file(handle, key=path)
    except (OSError, ValueError):
        return None


def load_location(name: str, local: LocalZone) -> tzinfo:
    """Go's ``time.LoadLocation``; raises CronParseError with robfig's "provided bad location" text."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local.tzinfo
    if ".." in name or name[0] in "/\\":
        raise _bad_location(name, "time: invalid location name")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise _bad_location(name, f"unknown time zone {name}") from None
    except IsADirectoryError:
        raise _bad_location(name, "is a directory") from None
    except ValueError as exc:
        # zoneinfo's "Invalid TZif file" is Go's malformed data; its other ValueErrors are about key
        # spelling (e.g. "a//b"), where Go would simply look for the file: call those unknown.
        reason = "malformed time zone information" if "TZif" in str(exc) else f"unknown time zone {name}"
        raise _bad_location(name, reason) from None
    except OSError as exc:
        raise _bad_location(name, (exc.strerror or str(exc)).lower()) from None


def _bad_location(name: str, reason: str) -> CronParseError:
    return CronParseError(f"provided bad location {name}: {reason}")


# --------------------------------------------------------------------------------------------------
# Cron: robfig/cron v3's standard parser (5 fields + descriptors + TZ prefix).
# --------------------------------------------------------------------------------------------------


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
_SHARED_FIELDS = frozenset(id(f) for fields in _DESCRIPTORS.values() for f in fields)


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
        zone = load_location(spec[equals + 1 : space], local)
        spec = _go_trim_space(spec[space:])
    if spec.startswith("@"):
        return _parse_descriptor(spec, zone)
    fields = _go_fields(spec)
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
            return EverySchedule.of(parse_go_duration(spec[len(every) :]))
        except GoDurationError as exc:
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
        named = bounds.names.get(_go_lower(expr))
        if named is not None:
            return named
    return _must_parse_int(expr)


def _must_parse_int(expr: str) -> int:
    try:
        number = _go_atoi(expr)
    except _AtoiError as exc:
        raise CronParseError(f"failed to parse int from {expr}: {exc}") from None
    if number < 0:
        raise CronParseError(f"negative number ({number}) not allowed: {expr}")
    return number


# --------------------------------------------------------------------------------------------------
# time_now formatting
# --------------------------------------------------------------------------------------------------


def clock_ns(seconds: float) -> int:
    """Clock seconds as integer nanoseconds, rounded to the microsecond a float can carry."""
    return round(seconds * 1_000_000) * 1_000


def format_rfc3339_nano(ns: int, zone: tzinfo) -> str:
    """Go's ``t.Format(time.RFC3339Nano)``: fraction without trailing zeros, ``Z`` for a zero offset."""
    seconds, fraction = divmod(ns, _NS)
    moment = datetime.fromtimestamp(seconds, zone)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    digits = f"{fraction:09d}".rstrip("0")
    if digits:
        text += "." + digits
    return text + _go_offset(moment.utcoffset() or timedelta(0))


def _go_offset(offset: timedelta) -> str:
    # Go's "Z07:00": Z for a zero offset, else the sign and whole minutes (seconds truncated).
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    minutes = abs(seconds) // 60
    return f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


# --------------------------------------------------------------------------------------------------
# The engine: the scope's registry of jobs and their firing.
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Job:
    """One registered schedule. Firings hold this object, never its id (defect 2 of the original)."""

    plugin_id: str
    schedule_id: str
    kind: JobType
    payload: bytes
    seq: int
    due: float | None
    schedule: Schedule | None = None  # recurring only
    expression: str = ""
    size: int = 0  # job_size(), what the caps count
    active: bool = True

    @property
    def key(self) -> tuple[str, str]:
        return (self.plugin_id, self.schedule_id)

    @property
    def internal_id(self) -> str:
        """The original's spelling of the key (shown only: ``:`` may occur in both parts)."""
        return f"{self.plugin_id}:{self.schedule_id}"


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A snapshot of one registered schedule, for tests and reports."""

    internal_id: str
    plugin_id: str
    schedule_id: str
    type: JobType
    payload: bytes
    due: float | None  # the next firing (Unix seconds); None: a cron that never matches
    expression: str = ""  # the cron expression of a recurring job


@dataclass(frozen=True, slots=True)
class Firing:
    """One delivered (or dropped) callback."""

    plugin_id: str
    schedule_id: str
    due: float
    is_recurring: bool
    payload: bytes
    outcome: Outcome
    error: str = ""


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    seq: int
    job: _Job = field(compare=False)


DEFAULT_MAX_JOBS = 50_000  # every plugin of the scope together
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_PLUGIN_MAX_JOBS = 10_000  # one plugin
DEFAULT_PLUGIN_MAX_BYTES = 16 * 1024 * 1024
# What a job costs besides its id, payload, expression and parsed schedule (each counted on its own): the
# _Job and heap _Entry objects, the (plugin, id) key tuple, the due float, the seq and size ints and a slot
# in the registry dict. Measured once with tracemalloc on CPython 3.11 (10k..100k one-time jobs: 350..375
# bytes each besides id and payload) and rounded up.
JOB_OVERHEAD = 400


def job_size(schedule_id: str, payload: bytes, expression: str, schedule: Schedule | None) -> int:
    """The bytes a job costs the process, as the caps count them."""
    size = JOB_OVERHEAD + sys.getsizeof(schedule_id) + sys.getsizeof(payload)
    if expression:
        size += sys.getsizeof(expression)
    if schedule is not None:
        size += sys.getsizeof(schedule)
        if isinstance(schedule, CronSchedule):
            # A parsed cron field is a frozenset of up to 60 ints: a few KB for a five-field expression.
            for part in (schedule.minute, schedule.hour, schedule.dom, schedule.month, schedule.dow):
                if id(part) not in _SHARED_FIELDS:
                    size += sys.getsizeof(part) + sys.getsizeof(part.values)
    return size


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    """The scheduler's settings of a scope (``HostOptions.scheduler``; see the module docstring)."""

    #: Fire due jobs on a real-time thread. None: as the runtime decides (its production scope runs one).
    run: bool | None = None
    #: Overrides the process's ``TZ`` for this scope, read exactly like ``TZ``; None: the real ``TZ``.
    timezone: str | None = None
    max_jobs: int = DEFAULT_MAX_JOBS
    max_bytes: int = DEFAULT_MAX_BYTES
    plugin_max_jobs: int = DEFAULT_PLUGIN_MAX_JOBS
    plugin_max_bytes: int = DEFAULT_PLUGIN_MAX_BYTES

    def __post_init__(self) -> None:
        if self.run is not None and not isinstance(self.run, bool):
            raise TypeError(f"SchedulerOptions.run must be True, False or None, got {self.run!r}")
        if self.timezone is not None and not isinstance(self.timezone, str):
            raise TypeError(
                f"SchedulerOptions.timezone must be a str (like TZ) or None, got {self.timezone!r}"
            )
        for name in ("max_jobs", "max_bytes", "plugin_max_jobs", "plugin_max_bytes"):
            check_positive("SchedulerOptions", name, getattr(self, name))

    def cap(self, setting: str) -> Cap:
        unit = "jobs" if setting.endswith("jobs") else "bytes"
        return Cap(SERVICE, setting, getattr(self, setting), unit, per_plugin=setting.startswith("plugin_"))


class CapExceeded(Exception):
    """A schedule was refused: registering it would pass ``cap``."""

    def __init__(self, cap: Cap) -> None:
        self.cap = cap
        super().__init__(cap.reached())


# Rebuild the heap once this many entries (and at least half of it) belong to replaced or cancelled jobs:
# a plugin replacing one far-future schedule over and over must not grow it without limit.
_STALE_COMPACT_MIN = 256


class SchedulerEngine:
    """All schedules of one scope, shared by its plugins; fires them when asked (or by its thread)."""

    def __init__(self, env: HostEnvironment, *, options: SchedulerOptions | None = None) -> None:
        self._env = env
        self.options = options if options is not None else env.options.scheduler
        self.warnings = CapWarnings()
        self._cond = threading.Condition(threading.Lock())
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._usage: dict[str, list[int]] = {}  # plugin id -> [jobs, bytes]
        self._bytes = 0
        self._heap: list[_Entry] = []
        self._stale = 0  # heap entries of jobs no longer registered (dropped lazily, or by compaction)
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    @classmethod
    def of(cls, env: HostEnvironment) -> SchedulerEngine:
        """The scope's engine, created on first use (started if ``SchedulerOptions.run``)."""
        return env.shared("scheduler", lambda: cls._create(env))

    @classmethod
    def _create(cls, env: HostEnvironment) -> SchedulerEngine:
        engine = cls(env)
        if engine.options.run:
            engine.start()  # production: a thread fires due jobs in real time; tests advance the clock
        return engine

    # -- time and zone -------------------------------------------------------------------------

    def now(self) -> float:
        return self._env.clock.now()

    def local_zone(self) -> LocalZone:
        """The local zone per Go's rules: the scope's ``timezone`` option, else the process's TZ."""
        override = self.options.timezone
        tz = override if override is not None else os.environ.get("TZ")
        return resolve_local_zone(tz)

    # -- scheduling ----------------------------------------------------------------------------

    def schedule_one_time(self, plugin_id: str, schedule_id: str, delay_seconds: int, payload: bytes) -> str:
        """Raises CapExceeded (nothing changes) when the job would pass a cap."""
        visible = schedule_id or new_schedule_id()
        due = self.now() + max(delay_seconds, 0)  # Go timers fire at once for a negative delay
        self._register(plugin_id, visible, "one-time", payload, due=due)
        return visible

    def schedule_recurring(self, plugin_id: str, schedule_id: str, expression: str, payload: bytes) -> str:
        """Raises CronParseError / CronPanic / CapExceeded before anything changes (defect 1 fixed)."""
        schedule = parse_cron(expression, self.local_zone())
        visible = schedule_id or new_schedule_id()
        due = schedule.next_after(self.now())
        self._register(
            plugin_id, visible, "recurring", payload, due=due, schedule=schedule, expression=expression
        )
        return visible

    def _register(
        self,
        plugin_id: str,
        schedule_id: str,
        kind: JobType,
        payload: bytes,
        *,
        due: float | None,
        schedule: Schedule | None = None,
        expression: str = "",
    ) -> None:
        size = job_size(schedule_id, payload, expression, schedule)
        with self._cond:
            old = self._jobs.get((plugin_id, schedule_id))
            over = self._over(plugin_id, size, old)
            if over is not None:
                raise CapExceeded(self.options.cap(over))
            self._seq += 1
            job = _Job(plugin_id, schedule_id, kind, payload, self._seq, due, schedule, expression, size)
            if old is not None:  # replacement, whatever the old type: it will never fire again
                self._unregister_locked(old)
                log.debug("replacing schedule %s of plugin %s", schedule_id, plugin_id)
            self._jobs[job.key] = job
            usage = self._usage.setdefault(plugin_id, [0, 0])
            usage[0] += 1
            usage[1] += size
            self._bytes += size
            if due is not None:
                heapq.heappush(self._heap, _Entry(due, job.seq, job))
            self._compact_locked()
            self._cond.notify_all()

    def _over(self, plugin_id: str, size: int, old: _Job | None) -> str | None:
        """The first cap a new job of ``size`` bytes would pass (``old``, which it replaces, freed first)."""
        jobs, held = self._usage.get(plugin_id, (0, 0))
        freed_jobs, freed_bytes = (1, old.size) if old is not None else (0, 0)
        jobs, held = jobs - freed_jobs, held - freed_bytes
        scope_jobs, scope_bytes = len(self._jobs) - freed_jobs, self._bytes - freed_bytes
        caps = self.options
        if jobs >= caps.plugin_max_jobs:
            return "plugin_max_jobs"
        if held + size > caps.plugin_max_bytes:
            return "plugin_max_bytes"
        if scope_jobs >= caps.max_jobs:
            return "max_jobs"
        if scope_bytes + size > caps.max_bytes:
            return "max_bytes"
        return None

    def _unregister_locked(self, job: _Job) -> None:
        """Take a registered job out (it never fires again) and out of the accounting."""
        del self._jobs[job.key]
        job.active = False
        if job.due is not None:
            self._stale += 1  # its heap entry stays until it reaches the top or the heap is compacted
        usage = self._usage[job.plugin_id]
        usage[0] -= 1
        usage[1] -= job.size
        self._bytes -= job.size
        if not usage[0]:
            del self._usage[job.plugin_id]

    def _compact_locked(self) -> None:
        if self._stale >= _STALE_COMPACT_MIN and self._stale * 2 >= len(self._heap):
            self._heap = [entry for entry in self._heap if entry.job.active]
            heapq.heapify(self._heap)
            self._stale = 0

    def cancel(self, plugin_id: str, schedule_id: str) -> bool:
        """Remove the plugin's ``schedule_id``; False when no such schedule is registered."""
        with self._cond:
            job = self._jobs.get((plugin_id, schedule_id))
            if job is None:
                return False
            self._unregister_locked(job)
            self._compact_locked()
            self._cond.notify_all()
            return True

    def cancel_all(self, plugin_id: str) -> int:
        """Remove every schedule of a plugin (the original never did: spec defect 3); returns how many."""
        with self._cond:
            doomed = [job for job in self._jobs.values() if job.plugin_id == plugin_id]
            for job in doomed:
                self._unregister_locked(job)
            self._compact_locked()
            self._cond.notify_all()
            return len(doomed)

    def usage(self, plugin_id: str | None = None) -> tuple[int, int]:
        """(jobs, bytes) registered now by the plugin, or by the whole scope, as the caps count them."""
        with self._cond:
            if plugin_id is None:
                return len(self._jobs), self._bytes
            jobs, held = self._usage.get(plugin_id, (0, 0))
            return jobs, held

    # -- inspection ----------------------------------------------------------------------------

    def jobs(self, plugin_id: str | None = None) -> list[ScheduledJob]:
        """Registered schedules in registration order (of the plugin, when given)."""
        with self._cond:
            jobs = sorted(self._jobs.values(), key=lambda job: job.seq)
        return [_snapshot(job) for job in jobs if plugin_id is None or job.plugin_id == plugin_id]

    def job(self, plugin_id: str, schedule_id: str) -> ScheduledJob | None:
        with self._cond:
            job = self._jobs.get((plugin_id, schedule_id))
        return None if job is None else _snapshot(job)

    def __len__(self) -> int:
        with self._cond:
            return len(self._jobs)

    def next_due(self) -> float | None:
        """When the earliest registered job fires next (Unix seconds), or None."""
        with self._cond:
            return self._peek_locked()

    def _peek_locked(self) -> float | None:
        while self._heap and not self._heap[0].job.active:
            heapq.heappop(self._heap)  # drop entries of replaced / cancelled jobs
            self._stale -= 1
        return self._heap[0].due if self._heap else None

    # -- firing --------------------------------------------------------------------------------

    def run_due(self, now: float | None = None) -> list[Firing]:
        """Fire every job due at or before ``now`` (default: the clock), in due order.

        A recurring job fires once per due time it passed. Jobs scheduled by the callbacks of this
        run wait for the next run (a callback that re-schedules itself cannot loop forever).
        """
        limit = self.now() if now is None else now
        with self._cond:
            horizon = self._seq
        firings: list[Firing] = []
        while (taken := self._take_due(limit, horizon)) is not None:
            firings.append(self._deliver(*taken))
        return firings

    def _take_due(self, limit: float, horizon: int) -> tuple[_Job, float] | None:
        """Pop the next due job (removing a one-time job, re-arming a recurring one) under the lock."""
        with self._cond:
            skipped: list[_Entry] = []
            taken: tuple[_Job, float] | None = None
            while self._peek_locked() is not None and self._heap[0].due <= limit:
                entry = heapq.heappop(self._heap)
                if entry.seq > horizon:
                    skipped.append(entry)
                    continue
                taken = (entry.job, entry.due)
                self._rearm_locked(entry)
                break
            for entry in skipped:
                heapq.heappush(self._heap, entry)
            return taken

    def _rearm_locked(self, entry: _Entry) -> None:
        job = entry.job
        if job.kind == "one-time":
            job.due = None  # its heap entry was just taken: nothing stale is left behind
            self._unregister_locked(job)  # removed before its callback runs, as in the original
            return
        assert job.schedule is not None  # recurring jobs always carry their schedule
        job.due = job.schedule.next_after(entry.due)
        if job.due is not None:
            heapq.heappush(self._heap, _Entry(job.due, job.seq, job))

    def _deliver(self, job: _Job, due: float) -> Firing:
        """Call the plugin's callback outside the lock; every failure is logged, never raised."""
        recurring = job.kind == "recurring"
        request = api_pb2.SchedulerCallbackRequest(
            schedule_id=job.schedule_id, payload=job.payload, is_recurring=recurring
        )
        started = time.perf_counter()
        response, error = self._call(job.plugin_id, request)
        if error:
            log.error(
                "schedule callback %s of plugin %s failed (dropped): %s",
                job.schedule_id,
                job.plugin_id,
                error,
            )
        self._env.transcript.record(
            plugin_id=job.plugin_id,
            service=SERVICE,
            function="on_scheduler_callback",
            request=request,
            response=response,
            verdict="error" if error else "ok",
            detail=error,
            duration=time.perf_counter() - started,
        )
        outcome: Outcome = "error" if error else "ok"
        return Firing(job.plugin_id, job.schedule_id, due, recurring, job.payload, outcome, error)

    def _call(
        self, plugin_id: str, request: api_pb2.SchedulerCallbackRequest
    ) -> tuple[api_pb2.SchedulerCallbackResponse | None, str]:
        caller = self._env.call_plugin
        if caller is None:
            return None, f"plugin not found for callback: {plugin_id} (this scope cannot call plugins)"
        try:
            reply = caller(plugin_id, CALLBACK_EXPORT, request)
        except Exception as exc:  # not loaded, no SchedulerCallback, trapped: the original only logged
            # ... and so nothing showed it; the scope keeps it for the test to report.
            self._env.callback_failed(
                plugin_id=plugin_id,
                service=SERVICE,
                export=CALLBACK_EXPORT,
                subject=f"schedule {request.schedule_id!r}",
                error=exc,
            )
            return None, str(exc) or type(exc).__name__
        if not isinstance(reply, Reply):
            return None, ""
        response = reply.response if isinstance(reply.response, api_pb2.SchedulerCallbackResponse) else None
        if reply.error_text is not None:
            return response, reply.error_text
        return response, response.error if response is not None else ""

    # -- production timer ----------------------------------------------------------------------

    def start(self) -> SchedulerEngine:
        """Fire jobs in real time on a daemon thread (production); tests call run_due instead."""
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._loop, name="wasmhost-scheduler", daemon=True)
                self._thread.start()
        return self

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                due = self._peek_locked()
                wait = None if due is None else due - self.now()
                if wait is None or wait > 0:
                    self._cond.wait(wait)  # woken early whenever the schedules change
                    continue
            try:
                self.run_due()
            except Exception:  # the thread must outlive any bug in one run
                log.exception("scheduler run failed")

    def close(self) -> None:
        """Stop the thread and forget every schedule (the original kept them in memory only)."""
        with self._cond:
            self._closed = True
            for job in self._jobs.values():
                job.active = False
            self._jobs.clear()
            self._usage.clear()
            self._bytes = 0
            self._heap.clear()
            self._stale = 0
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def _snapshot(job: _Job) -> ScheduledJob:
    return ScheduledJob(
        job.internal_id, job.plugin_id, job.schedule_id, job.kind, job.payload, job.due, job.expression
    )


# --------------------------------------------------------------------------------------------------
# The service: what one plugin's ``env.*`` imports do.
# --------------------------------------------------------------------------------------------------


class SchedulerService(HostService):
    name = "scheduler"
    function_names = ("schedule_one_time", "schedule_recurring", "cancel_schedule", "time_now")

    @classmethod
    def create(cls, ctx: ServiceContext) -> SchedulerService:
        return cls(ctx.plugin_id, SchedulerEngine.of(ctx.env))

    def __init__(self, plugin_id: str, engine: SchedulerEngine) -> None:
        self.plugin_id = plugin_id
        self.engine = engine

    def schedule_one_time(
        self, request: scheduler_pb2.ScheduleOneTimeRequest
    ) -> scheduler_pb2.ScheduleResponse:
        try:
            visible = self.engine.schedule_one_time(
                self.plugin_id, request.schedule_id, request.delay_seconds, request.payload
            )
        except CapExceeded as exc:
            raise self._refused("one-time", exc.cap) from exc
        return scheduler_pb2.ScheduleResponse(schedule_id=visible)

    def schedule_recurring(
        self, request: scheduler_pb2.ScheduleRecurringRequest
    ) -> scheduler_pb2.ScheduleResponse:
        try:
            visible = self.engine.schedule_recurring(
                self.plugin_id, request.schedule_id, request.cron_expression, request.payload
            )
        except CronParseError as exc:
            raise HostHardError(
                SERVICE, "schedule_recurring", f"failed to schedule recurring job: {exc}"
            ) from exc
        except CronPanic as exc:
            raise HostHardError(SERVICE, "schedule_recurring", str(exc)) from exc
        except CapExceeded as exc:
            raise self._refused("recurring", exc.cap) from exc
        return scheduler_pb2.ScheduleResponse(schedule_id=visible)

    def _refused(self, kind: str, cap: Cap) -> SoftError:
        """A schedule past a cap: the response carries no id (all the original's wire can say)."""
        self.engine.warnings.warn(
            self.plugin_id,
            cap,
            "its schedule_one_time / schedule_recurring calls answer an empty schedule_id (nothing "
            "scheduled) until some of its schedules fire or are cancelled",
        )
        detail = f"failed to schedule {kind} job: {cap.reached()}"
        return SoftError(scheduler_pb2.ScheduleResponse(), detail)

    def cancel_schedule(self, request: scheduler_pb2.CancelRequest) -> scheduler_pb2.CancelResponse:
        if self.engine.cancel(self.plugin_id, request.schedule_id):
            return scheduler_pb2.CancelResponse(success=True)
        return scheduler_pb2.CancelResponse(success=False, error=NOT_FOUND)

    def time_now(self, _request: scheduler_pb2.TimeNowRequest) -> scheduler_pb2.TimeNowResponse:
        zone = self.engine.local_zone()
        ns = clock_ns(self.engine.now())
        return scheduler_pb2.TimeNowResponse(
            rfc3339_nano=format_rfc3339_nano(ns, zone.tzinfo),
            unix_milli=ns // 1_000_000,
            local_time_zone=zone.name,
        )

    def functions(self) -> Sequence[HostFunction]:
        return (
            HostFunction(
                service=self.name,
                name="schedule_one_time",
                request_type=scheduler_pb2.ScheduleOneTimeRequest,
                response_type=scheduler_pb2.ScheduleResponse,
                handler=self.schedule_one_time,
            ),
            HostFunction(
                service=self.name,
                name="schedule_recurring",
                request_type=scheduler_pb2.ScheduleRecurringRequest,
                response_type=scheduler_pb2.ScheduleResponse,
                handler=self.schedule_recurring,
            ),
            HostFunction(
                service=self.name,
                name="cancel_schedule",
                request_type=scheduler_pb2.CancelRequest,
                response_type=scheduler_pb2.CancelResponse,
                handler=self.cancel_schedule,
            ),
            HostFunction(
                service=self.name,
                name="time_now",
                request_type=scheduler_pb2.TimeNowRequest,
                response_type=scheduler_pb2.TimeNowResponse,
                handler=self.time_now,
            ),
        )
