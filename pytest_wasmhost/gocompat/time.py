"""time: ``ParseDuration``, ``Duration.String``, ``Format(RFC3339Nano)``, and finding zones as Go does."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pytest_wasmhost.gocompat.oserr import errno_text
from pytest_wasmhost.gocompat.utf8 import go_bytes, go_string

__all__ = [
    "UTC_ZONE",
    "DurationError",
    "LocalZone",
    "LocationError",
    "format_duration",
    "format_rfc3339_nano",
    "load_location",
    "parse_duration",
    "resolve_local_zone",
]

_NS = 1_000_000_000


def _quote(text: str) -> str:
    """The time package's own quote(): every byte of a non-ASCII or control rune as \\xNN."""
    out = ['"']
    for ch in text:
        if ord(ch) >= 0x80 or ch < " ":
            out.extend(f"\\x{byte:02x}" for byte in go_bytes(ch))
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    out.append('"')
    return "".join(out)


# -- ParseDuration ----------------------------------------------------------------------------------


class DurationError(ValueError):
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


def parse_duration(text: str) -> int:
    """Go's ``time.ParseDuration`` in nanoseconds: ``1h30m``, ``41s``, ``1.5h``, ``300ms``, ``-2µs``.

    Hand-written because no Python library parses Go's syntax with its overflow rules, float rounding of
    fractions and error texts (a plugin sees them): a port of Go's implementation over the UTF-8 bytes.
    """
    rest = go_bytes(text)
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
        raise _duration_error(f"unknown unit {_quote(go_string(unit_text))} in duration", text)
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


def _duration_error(message: str, text: str) -> DurationError:
    return DurationError(f"time: {message} {_quote(text)}")


# -- Duration.String --------------------------------------------------------------------------------


def format_duration(nanos: int) -> str:
    """``time.Duration.String``: ``5s``, ``1.5s``, ``500ms``, ``1m30s``, ``1h0m0s``, ``0s``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_decimal(nanos, 1_000)}µs"
    if nanos < _NS:
        return f"{sign}{_decimal(nanos, 1_000_000)}ms"
    hours, rest = divmod(nanos, 3_600 * _NS)
    minutes, rest = divmod(rest, 60 * _NS)
    secs = f"{_decimal(rest, _NS)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{secs}"
    if minutes:
        return f"{sign}{minutes}m{secs}"
    return f"{sign}{secs}"


def _decimal(value: int, unit: int) -> str:
    """``value / unit`` with the fraction's trailing zeros dropped (``1500, 1000 -> "1.5"``)."""
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = str(fraction).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# -- Format(RFC3339Nano) ----------------------------------------------------------------------------


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
    return text + _offset(moment.utcoffset() or timedelta(0))


def _offset(offset: timedelta) -> str:
    # Go's "Z07:00": Z for a zero offset, else the sign and whole minutes (seconds truncated).
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "Z"
    minutes = abs(seconds) // 60
    return f"{'-' if seconds < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"


# -- zones ------------------------------------------------------------------------------------------


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


class LocationError(ValueError):
    """``time.LoadLocation`` failed; ``str()`` is Go's error text."""


def load_location(name: str, local: LocalZone) -> tzinfo:
    """Go's ``time.LoadLocation`` (``Local`` is ``local``); raises :class:`LocationError` with Go's text."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local.tzinfo
    if ".." in name or name[0] in "/\\":
        raise LocationError("time: invalid location name")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise LocationError(f"unknown time zone {name}") from None
    except IsADirectoryError:
        raise LocationError("is a directory") from None
    except ValueError as exc:
        # zoneinfo's "Invalid TZif file" is Go's malformed data; its other ValueErrors are about key
        # spelling (e.g. "a//b"), where Go would simply look for the file: call those unknown.
        reason = "malformed time zone information" if "TZif" in str(exc) else f"unknown time zone {name}"
        raise LocationError(reason) from None
    except OSError as exc:
        raise LocationError(errno_text(exc)) from None
