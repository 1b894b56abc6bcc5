"""UTC calendar windows: minute, hour, day, ISO week (Monday 00:00), month, year. Pure.

Fixed-length windows are arithmetic on epoch seconds; months and years are not fixed (28 to 31
days, 365 or 366), so they go through `datetime`. Callers look a window up once and then test
`start <= ts < end`, so the slower calendar path runs once per window, not once per frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

DAY = 86_400
WEEK = 7 * DAY
_THURSDAY = 3  # 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday = 0


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _epoch(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=timezone.utc).timestamp())


def _fixed(size: int) -> tuple[Callable[[int], int], Callable[[int], int]]:
    return (lambda ts: ts - ts % size), (lambda start: start + size)


def _week_start(ts: int) -> int:
    day = ts // DAY
    return (day - (day + _THURSDAY) % 7) * DAY


def _month_start(ts: int) -> int:
    moment = _utc(ts)
    return _epoch(moment.year, moment.month)


def _month_end(start: int) -> int:
    moment = _utc(start)
    return _epoch(moment.year + moment.month // 12, moment.month % 12 + 1)


def _year_start(ts: int) -> int:
    return _epoch(_utc(ts).year, 1)


def _year_end(start: int) -> int:
    return _epoch(_utc(start).year + 1, 1)


@dataclass(frozen=True)
class Granularity:
    name: str
    start: Callable[[int], int]  # the start of the window holding ts
    end: Callable[[int], int]  # the end of the window starting at start


GRANULARITIES: dict[str, Granularity] = {
    "minute": Granularity("minute", *_fixed(60)),
    "hour": Granularity("hour", *_fixed(3600)),
    "day": Granularity("day", *_fixed(DAY)),
    "week": Granularity("week", _week_start, lambda start: start + WEEK),
    "month": Granularity("month", _month_start, _month_end),
    "year": Granularity("year", _year_start, _year_end),
}


def parse_granularities(text: str) -> list[Granularity]:
    """'minute,day' -> those granularities, shortest first; unknown names are an error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in GRANULARITIES]
    if unknown or not names:
        raise ValueError(f"granularities must be some of {', '.join(GRANULARITIES)}; got {text!r}")
    return [g for name, g in GRANULARITIES.items() if name in names]
