"""gocompat.time against Go's own tables (time_test.go: parseDurationTests, durationTests) and ours."""

from __future__ import annotations

import pytest

from pytest_wasmhost.gocompat.time import DurationError, format_duration, parse_duration

_US, _MS, _S, _M, _H = 1_000, 1_000_000, 1_000_000_000, 60_000_000_000, 3_600_000_000_000


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        # Go's parseDurationTests
        ("0", 0),
        ("5s", 5 * _S),
        ("30s", 30 * _S),
        ("1478s", 1478 * _S),
        ("-5s", -5 * _S),
        ("+5s", 5 * _S),
        ("-0", 0),
        ("+0", 0),
        ("5.0s", 5 * _S),
        ("5.6s", 5 * _S + 600 * _MS),
        ("5.s", 5 * _S),
        (".5s", 500 * _MS),
        ("1.0s", _S),
        ("1.00s", _S),
        ("1.004s", _S + 4 * _MS),
        ("1.0040s", _S + 4 * _MS),
        ("100.00100s", 100 * _S + _MS),
        ("10ns", 10),
        ("11us", 11 * _US),
        ("12µs", 12 * _US),  # U+00B5
        ("12μs", 12 * _US),  # U+03BC
        ("13ms", 13 * _MS),
        ("14s", 14 * _S),
        ("15m", 15 * _M),
        ("16h", 16 * _H),
        ("3h30m", 3 * _H + 30 * _M),
        ("10.5s4m", 4 * _M + 10 * _S + 500 * _MS),
        ("-2m3.4s", -(2 * _M + 3 * _S + 400 * _MS)),
        ("1h2m3s4ms5us6ns", _H + 2 * _M + 3 * _S + 4 * _MS + 5 * _US + 6),
        ("39h9m14.425s", 39 * _H + 9 * _M + 14 * _S + 425 * _MS),
        ("52763797000ns", 52763797000),
        ("0.3333333333333333333h", 20 * _M),
        ("9007199254740993ns", (1 << 53) + 1),
        ("9223372036854775807ns", (1 << 63) - 1),
        ("9223372036854775.807us", (1 << 63) - 1),
        ("9223372036s854ms775us807ns", (1 << 63) - 1),
        ("-9223372036854775808ns", -(1 << 63)),
        ("-9223372036854775.808us", -(1 << 63)),
        ("-9223372036s854ms775us808ns", -(1 << 63)),
        ("-2562047h47m16.854775808s", -(1 << 63)),
        ("0.100000000000000000000h", 6 * _M),
        ("0.830103483285477580700h", 49 * _M + 48 * _S + 372539827),
        # ours
        ("2562047h47m16.854775807s", (1 << 63) - 1),
    ],
)
def test_parse_duration(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        # Go's parseDurationErrorTests: the message names the input, quoted by the time package
        ("", '""'),
        ("3", '"3"'),
        ("-", '"-"'),
        ("s", '"s"'),
        (".", '"."'),
        ("-.", '"-."'),
        (".s", '".s"'),
        ("+.s", '"+.s"'),
        ("1d", '"1d"'),
        ("\udc85\udc85", '"\\x85\\x85"'),  # the Go string "\x85\x85": bytes that are not UTF-8
        ("\udcffff", '"\\xffff"'),
        ("hello \udcffff world", '"hello \\xffff world"'),
        ("\ufffd", '"\\xef\\xbf\\xbd"'),
        ("\ufffd hello \ufffd world", '"\\xef\\xbf\\xbd hello \\xef\\xbf\\xbd world"'),
        ("9223372036854775810ns", '"9223372036854775810ns"'),
        ("9223372036854775808ns", '"9223372036854775808ns"'),
        ("-9223372036854775809ns", '"-9223372036854775809ns"'),
        ("9223372036854776us", '"9223372036854776us"'),
        ("3000000h", '"3000000h"'),
        ("9223372036854775.808us", '"9223372036854775.808us"'),
        ("9223372036854ms775us808ns", '"9223372036854ms775us808ns"'),
    ],
)
def test_parse_duration_errors_name_the_input(text: str, quoted: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value).startswith("time: ")
    assert str(info.value).endswith(quoted)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        (".s", 'time: invalid duration ".s"'),
        ("1e3s", 'time: unknown unit "e" in duration "1e3s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("2562048h", 'time: invalid duration "2562048h"'),
        ('1"s', 'time: unknown unit "\\"s" in duration "1\\"s"'),
        ("1é", 'time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"'),
        ("1" * 5000 + "s", f'time: invalid duration "{"1" * 5000}s"'),
    ],
)
def test_parse_duration_error_texts(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        # Go's durationTests
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1µs"),
        (2200 * _US, "2.2ms"),
        (3300 * _MS, "3.3s"),
        (4 * _M + 5 * _S, "4m5s"),
        (4 * _M + 5001 * _MS, "4m5.001s"),
        (5 * _H + 6 * _M + 7001 * _MS, "5h6m7.001s"),
        (8 * _M + 1, "8m0.000000001s"),
        ((1 << 63) - 1, "2562047h47m16.854775807s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        # ours: each unit's lower bound is that unit's, and a fraction keeps its inner zeros
        (999, "999ns"),
        (_US, "1µs"),
        (_MS, "1ms"),
        (_S, "1s"),
        (1050 * _MS, "1.05s"),
        (50 * _MS, "50ms"),
        (60 * _S, "1m0s"),
        (90250 * _MS, "1m30.25s"),
        (_H, "1h0m0s"),
        (-1500 * _MS, "-1.5s"),
    ],
)
def test_format_duration(nanoseconds: int, text: str) -> None:
    assert format_duration(nanoseconds) == text
