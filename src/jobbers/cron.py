"""Cron expressions and their fire times in a time zone.

Five fields (minute hour day-of-month month day-of-week) or six, with seconds first. Each field
takes ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists ``a,b``, month and day
names (``jan``, ``mon``), and ``?`` for "any" in the day fields; day-of-week 0 and 7 are Sunday.
As in Vixie cron, when both day fields are restricted a day matches either.

Times are matched on the zone's wall clock: a wall time that does not exist (clocks going forward)
does not fire, and one that happens twice (clocks going back) fires once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
#: How far ahead a search looks before it decides the expression never fires (Feb 29 on a
#: given weekday comes round within 28 years).
HORIZON_YEARS = 30


class CronError(ValueError):
    """An expression or time zone that cannot be used; the message says which part and why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day of week", 0, 7, _DAYS)


def _number(text: str, field: _Field) -> int:
    if field.names and text.lower() in field.names:
        return field.names[text.lower()]
    if not text.isdigit():
        raise CronError(f"{field.name}: {text!r} is not a number")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it is unrestricted (``*`` or ``?``)."""
    if text in ("*", "?"):
        return frozenset(range(field.low, field.high + 1)), True
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name}: empty item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{field.name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base in ("*", "?"):
            low, high = field.low, field.high
        elif "-" in base:
            a, _, b = base.partition("-")
            low, high = _number(a, field), _number(b, field)
            if low > high:
                raise CronError(f"{field.name}: range {base!r} runs backwards")
        else:
            low = _number(base, field)
            high = field.high if slash else low
        values.update(range(low, high + 1, step))
    return frozenset(values), False


@dataclass(frozen=True)
class Cron:
    """A parsed expression; :meth:`next_after` finds fire times."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    #: 0 is Sunday (7 is folded into it).
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7
        in_month, in_week = day.day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, after: float, zone: ZoneInfo) -> float | None:
        """The first fire time strictly after ``after`` (epoch seconds), or None within
        :data:`HORIZON_YEARS`."""
        start = datetime.fromtimestamp(after, zone).replace(tzinfo=None, microsecond=0)
        wall = start + timedelta(seconds=1)
        limit = start.year + HORIZON_YEARS
        while wall.year <= limit:
            if wall.month not in self.months:
                wall = _next_month(wall)
                continue
            if not self._day_matches(wall):
                wall = (wall + timedelta(days=1)).replace(hour=0, minute=0, second=0)
                continue
            if wall.hour not in self.hours:
                wall = (wall + timedelta(hours=1)).replace(minute=0, second=0)
                continue
            if wall.minute not in self.minutes:
                wall = (wall + timedelta(minutes=1)).replace(second=0)
                continue
            if wall.second not in self.seconds:
                wall += timedelta(seconds=1)
                continue
            at = _instant(wall, zone)
            if at is not None and at > after:
                return at
            wall += timedelta(seconds=1)
        return None

    def next_times(self, after: float, zone: ZoneInfo, count: int) -> list[float]:
        found: list[float] = []
        at: float | None = after
        while len(found) < count and at is not None:
            at = self.next_after(at, zone)
            if at is not None:
                found.append(at)
        return found


def _next_month(wall: datetime) -> datetime:
    if wall.month == 12:
        return datetime(wall.year + 1, 1, 1)
    return datetime(wall.year, wall.month + 1, 1)


def _instant(wall: datetime, zone: ZoneInfo) -> float | None:
    """The epoch time of a wall time (its first occurrence), or None when the zone skips it."""
    aware = wall.replace(tzinfo=zone, fold=0)
    back = aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != wall:
        return None
    return aware.timestamp()


@lru_cache(maxsize=256)
def parse(text: str) -> Cron:
    """A cron expression, or :class:`CronError` naming the field at fault."""
    parts = text.split()
    if len(parts) not in (5, 6):
        raise CronError(f"a cron expression has 5 or 6 fields, {text!r} has {len(parts)}")
    if len(parts) == 5:
        parts = ["0", *parts]
    seconds, _ = _parse_field(parts[0], _SECOND)
    minutes, _ = _parse_field(parts[1], _MINUTE)
    hours, _ = _parse_field(parts[2], _HOUR)
    days, any_day = _parse_field(parts[3], _DOM)
    months, _ = _parse_field(parts[4], _MONTH)
    weekdays, any_weekday = _parse_field(parts[5], _DOW)
    weekdays = frozenset(d % 7 for d in weekdays)
    return Cron(
        " ".join(text.split()),
        seconds,
        minutes,
        hours,
        days,
        months,
        weekdays,
        any_day,
        any_weekday,
    )


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """An IANA time zone (``UTC``, ``Europe/Paris``), or :class:`CronError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r}") from exc
