"""gocompat.cron against robfig/cron v3's parser_test.go cases (TestRange, TestParseScheduleErrors, ...)."""

from __future__ import annotations

from datetime import UTC

import pytest

from pytest_wasmhost.gocompat import cron
from pytest_wasmhost.gocompat.cron import CronPanic, CronParseError, CronSchedule, EverySchedule, parse_cron
from pytest_wasmhost.gocompat.time import UTC_ZONE


@pytest.mark.parametrize(
    ("expr", "low", "high", "values", "star", "error"),
    [
        # robfig's TestRange
        ("5", 0, 7, {5}, False, ""),
        ("0", 0, 7, {0}, False, ""),
        ("7", 0, 7, {7}, False, ""),
        ("5-5", 0, 7, {5}, False, ""),
        ("5-6", 0, 7, {5, 6}, False, ""),
        ("5-7", 0, 7, {5, 6, 7}, False, ""),
        ("5-6/2", 0, 7, {5}, False, ""),
        ("5-7/2", 0, 7, {5, 7}, False, ""),
        ("5-7/1", 0, 7, {5, 6, 7}, False, ""),
        ("*", 1, 3, {1, 2, 3}, True, ""),
        ("*/2", 1, 3, {1, 3}, False, ""),
        ("5--5", 0, 0, set(), False, "too many hyphens"),
        ("jan-x", 0, 0, set(), False, "failed to parse int from"),
        ("2-x", 1, 5, set(), False, "failed to parse int from"),
        ("*/-12", 0, 0, set(), False, "negative number"),
        ("*//2", 0, 0, set(), False, "too many slashes"),
        ("1", 3, 5, set(), False, "below minimum"),
        ("6", 3, 5, set(), False, "above maximum"),
        ("5-3", 3, 5, set(), False, "beginning of range (5) beyond end of range (3)"),
        ("*/0", 0, 0, set(), False, "should be a positive number"),
    ],
)
def test_range(expr: str, low: int, high: int, values: set[int], star: bool, error: str) -> None:
    bounds = cron._Bounds(low, high)
    if error:
        with pytest.raises(CronParseError, match=error.replace("(", r"\(").replace(")", r"\)")):
            cron._get_range(expr, bounds)
        return
    assert cron._get_range(expr, bounds) == (frozenset(values), star)


@pytest.mark.parametrize(
    ("expr", "values"),
    [
        # robfig's TestField (a comma list of ranges)
        ("5", {5}),
        ("5,6", {5, 6}),
        ("5,6,7", {5, 6, 7}),
        ("1,5-7/2,3", {1, 3, 5, 7}),
    ],
)
def test_field(expr: str, values: set[int]) -> None:
    assert cron._get_field(expr, cron._Bounds(0, 7)).values == frozenset(values)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # robfig's TestParseScheduleErrors and TestStandardSpecSchedule's failures, full texts
        ("* 5 j * *", 'failed to parse int from j: strconv.Atoi: parsing "j": invalid syntax'),
        ("@every Xm", 'failed to parse duration @every Xm: time: invalid duration "Xm"'),
        ("@unrecognized", "unrecognized descriptor: @unrecognized"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("", "empty spec string"),
        ("5 j * * *", 'failed to parse int from j: strconv.Atoi: parsing "j": invalid syntax'),
        ("TZ=Nowhere/City 5 * * * *", "provided bad location Nowhere/City: unknown time zone Nowhere/City"),
        ("TZ=../etc 5 * * * *", "provided bad location ../etc: time: invalid location name"),
        (
            "99999999999999999999 * * * *",
            "failed to parse int from 99999999999999999999: "
            'strconv.Atoi: parsing "99999999999999999999": value out of range',
        ),
    ],
)
def test_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(CronParseError) as info:
        parse_cron(spec, UTC_ZONE)
    assert str(info.value) == message


def test_tz_without_a_following_space_is_robfigs_panic() -> None:
    with pytest.raises(CronPanic, match=r"slice bounds out of range \[:-1\]"):
        parse_cron("TZ=UTC", UTC_ZONE)


def test_standard_specs() -> None:
    # robfig's TestStandardSpecSchedule: "CRON_TZ=UTC 5 * * * *" and "5 5 * * *" parse to these sets
    every_hour = parse_cron("CRON_TZ=UTC 5 * * * *", UTC_ZONE)
    assert isinstance(every_hour, CronSchedule)
    assert (every_hour.minute.values, every_hour.hour.star, every_hour.zone) == (frozenset({5}), True, UTC)
    daily = parse_cron("5 5 * * *", UTC_ZONE)
    assert isinstance(daily, CronSchedule)
    assert (daily.minute.values, daily.hour.values, daily.dom.star) == (frozenset({5}), frozenset({5}), True)
    assert parse_cron("@every 5m", UTC_ZONE) == EverySchedule(5 * 60 * 1_000_000_000)


def test_names_are_case_insensitive_and_descriptors_shared() -> None:
    # robfig lower-cases month and weekday names (strings.ToLower: U+0130 is "i", one rune)
    schedule = parse_cron("0 0 * JAN-Mar sun,SAT", UTC_ZONE)
    assert isinstance(schedule, CronSchedule)
    assert (schedule.month.values, schedule.dow.values) == (frozenset({1, 2, 3}), frozenset({0, 6}))
    yearly = parse_cron("@annually", UTC_ZONE)
    assert isinstance(yearly, CronSchedule)
    assert yearly.own_fields() == ()
    assert len(schedule.own_fields()) == 5
