"""Cron expressions: what each field accepts, the times they give, and wall clocks across DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from jobbers.cron import CronError, parse, zone
from jobbers.schedule import check_timing

PARIS = ZoneInfo("Europe/Paris")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


def local(ts: float, tz: ZoneInfo = PARIS) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S %a")


def times(expr: str, after: float, n: int, tz: str = "UTC") -> list[str]:
    zone_ = zone(tz)
    return [local(t, zone_) for t in parse(expr).next_times(after, zone_, n)]


def test_five_fields_fire_on_the_minute_six_on_the_second() -> None:
    start = utc(2026, 1, 1, 0, 0, 0)
    assert times("*/15 * * * *", start, 3) == [
        "2026-01-01 00:15:00 Thu",
        "2026-01-01 00:30:00 Thu",
        "2026-01-01 00:45:00 Thu",
    ]
    assert times("*/20 * * * * *", start, 3) == [
        "2026-01-01 00:00:20 Thu",
        "2026-01-01 00:00:40 Thu",
        "2026-01-01 00:01:00 Thu",
    ]
    # strictly after: a time on an occurrence gives the next one
    assert times("0 * * * *", utc(2026, 1, 1, 5, 0, 0), 1) == ["2026-01-01 06:00:00 Thu"]


def test_ranges_lists_steps_and_names() -> None:
    start = utc(2026, 1, 1)
    assert times("0 9-17/4 * * mon-fri", start, 4) == [
        "2026-01-01 09:00:00 Thu",
        "2026-01-01 13:00:00 Thu",
        "2026-01-01 17:00:00 Thu",
        "2026-01-02 09:00:00 Fri",
    ]
    assert times("30 6 1 jan,jul *", start, 2) == [
        "2026-01-01 06:30:00 Thu",
        "2026-07-01 06:30:00 Wed",
    ]
    assert times("0 0 * * 7", start, 1) == ["2026-01-04 00:00:00 Sun"]  # 7 is Sunday
    assert times("0 0 * * 0", start, 1) == times("0 0 ? * SUN", start, 1)
    assert times("0 0 5/10 * *", start, 3) == [
        "2026-01-05 00:00:00 Mon",
        "2026-01-15 00:00:00 Thu",
        "2026-01-25 00:00:00 Sun",
    ]


def test_both_day_fields_restricted_match_either() -> None:
    got = times("0 0 13 * fri", utc(2026, 2, 1), 3)
    assert got == ["2026-02-06 00:00:00 Fri", "2026-02-13 00:00:00 Fri", "2026-02-20 00:00:00 Fri"]
    got = times("0 0 13 * mon", utc(2026, 4, 10), 2)
    assert got == ["2026-04-13 00:00:00 Mon", "2026-04-20 00:00:00 Mon"]


def test_leap_days_and_expressions_that_never_fire() -> None:
    assert times("0 0 29 2 *", utc(2026, 1, 1), 1) == ["2028-02-29 00:00:00 Tue"]
    assert parse("0 0 31 2 *").next_after(utc(2026, 1, 1), zone("UTC")) is None
    with pytest.raises(CronError, match="never fires"):
        check_timing("0 0 30 2 *", "UTC", utc(2026, 1, 1))


def test_wall_clock_across_daylight_saving_changes() -> None:
    # 2026-03-29 02:30 does not exist in Paris: that day does not fire.
    got = times("30 2 * * *", utc(2026, 3, 27, 12), 3, "Europe/Paris")
    assert got == ["2026-03-28 02:30:00 Sat", "2026-03-30 02:30:00 Mon", "2026-03-31 02:30:00 Tue"]
    # 2026-10-25 02:30 happens twice in Paris: it fires once, the first time (CEST, UTC+2).
    fired = parse("30 2 * * *").next_times(utc(2026, 10, 24, 12), PARIS, 2)
    assert fired[0] == utc(2026, 10, 25, 0, 30)
    assert local(fired[1]) == "2026-10-26 02:30:00 Mon"
    # hourly: the repeated 02:00 fires once, so one real hour goes without a run
    hourly = parse("0 * * * *").next_times(utc(2026, 10, 24, 22, 30), PARIS, 6)
    gaps = [round((b - a) / 3600) for a, b in itertools.pairwise(hourly)]
    assert gaps == [1, 2, 1, 1, 1]
    assert local(hourly[1]) == "2026-10-25 02:00:00 Sun"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("* * * *", "5 or 6 fields"),
        ("* * * * * * *", "5 or 6 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24"),
        ("* * 0 * *", "day of month: 0"),
        ("* * * 13 *", "month: 13"),
        ("* * * * 8", "day of week: 8"),
        ("* * * foo *", "month: 'foo' is not a number"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("1,,2 * * * *", "empty item"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(CronError, match=message.replace("*", r"\*")):
        parse(expr)


def test_unknown_zones_are_refused() -> None:
    for name in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(CronError, match="unknown time zone"):
            zone(name)
