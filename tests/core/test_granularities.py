"""Calendar windows: every timestamp falls in exactly one window, windows tile time, and the
boundaries that trip hand-written code (leap day, year change, ISO weeks across years) are right.
Expected boundaries come from datetime and the ISO calendar, not from the code under test."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uniqcount.core.granularities import GRANULARITIES, parse_granularities

UTC = timezone.utc
timestamps = st.integers(min_value=0, max_value=2**33)  # 1970 .. 2242


def epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("name", list(GRANULARITIES))
@given(ts=timestamps)
def test_each_timestamp_is_in_the_window_that_starts_at_its_start(name, ts):
    g = GRANULARITIES[name]
    start = g.start(ts)
    assert start <= ts < g.end(start)
    assert g.start(start) == start and g.start(g.end(start) - 1) == start
    assert g.start(g.end(start)) == g.end(start), "windows must tile time without gaps"


@given(ts=timestamps)
def test_windows_match_the_utc_calendar(ts):
    moment = datetime.fromtimestamp(ts, UTC)
    day = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    monday = day - timedelta(days=moment.isocalendar().weekday - 1)
    expected = {
        "minute": moment.replace(second=0),
        "hour": moment.replace(minute=0, second=0),
        "day": day,
        "week": monday,
        "month": datetime(moment.year, moment.month, 1, tzinfo=UTC),
        "year": datetime(moment.year, 1, 1, tzinfo=UTC),
    }
    for name, start in expected.items():
        assert GRANULARITIES[name].start(ts) == int(start.timestamp()), name


def test_leap_day_and_year_change():
    month, year, week = GRANULARITIES["month"], GRANULARITIES["year"], GRANULARITIES["week"]
    leap_day = epoch(2024, 2, 29, 12)
    assert (month.start(leap_day), month.end(month.start(leap_day))) == (epoch(2024, 2, 1), epoch(2024, 3, 1))
    assert year.end(year.start(leap_day)) - year.start(leap_day) == 366 * 86400
    assert month.end(epoch(2023, 12, 1)) == epoch(2024, 1, 1)
    new_year_eve = epoch(2024, 12, 31, 23, 59, 59)  # a Tuesday: its ISO week starts Monday 30 December
    assert (week.start(new_year_eve), week.end(week.start(new_year_eve))) == (epoch(2024, 12, 30), epoch(2025, 1, 6))
    assert year.start(new_year_eve + 1) == epoch(2025, 1, 1) == new_year_eve + 1


def test_parse_granularities_orders_shortest_first_and_rejects_unknown_names():
    assert [g.name for g in parse_granularities("year, minute,week")] == ["minute", "week", "year"]
    with pytest.raises(ValueError, match="fortnight"):
        parse_granularities("minute,fortnight")
    with pytest.raises(ValueError):
        parse_granularities(" , ")
