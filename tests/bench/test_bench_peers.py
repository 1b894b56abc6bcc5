"""bench.peers holds each peer's minutes against uniqcount's: the latest final record of each minute is
the exact answer, and every minute a peer misses, adds or counts otherwise is reported."""
from __future__ import annotations

from bench.peers import agreement, minutes_of


def test_the_exact_minutes_are_the_latest_final_records():
    records = [{"granularity": "minute", "window_start": 0, "unique_users": 5, "final": True},
               {"granularity": "minute", "window_start": 0, "unique_users": 6, "final": True},  # a correction
               {"granularity": "minute", "window_start": 60, "unique_users": 9, "final": False},
               {"granularity": "hour", "window_start": 0, "unique_users": 20, "final": True}]
    assert minutes_of(records) == {0: 6}


def test_a_peer_is_exact_only_when_every_minute_agrees():
    exact = {0: 10, 60: 20, 120: 30}
    assert agreement(dict(exact), exact) == "exact (3 minutes)"
    assert agreement({0: 10, 60: 18, 120: 30}, exact) == "1 of 3 minutes differ, by -2 users in all"
    assert agreement({0: 10, 60: 20}, exact) == "1 of 3 minutes differ, by -30 users in all"
    assert agreement({**exact, 180: 4}, exact) == "1 of 3 minutes differ, by +4 users in all"
