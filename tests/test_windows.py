"""Minute windows under the card's rule (allowed lateness 0)."""
from __future__ import annotations

from collections import defaultdict

from hypothesis import given, strategies as st

from uniqcount.windows import MinuteWindows


def run(frames, batches=None):
    windows = MinuteWindows()
    cuts = batches or [len(frames)]
    start = 0
    out = []
    for size in cuts:
        windows.add_many(frames[start:start + size])
        out += windows.take_closed()
        start += size
    windows.add_many(frames[start:])
    windows.flush()
    out += windows.take_closed()
    return [(w.start, len(w.users), w.frames) for w in out], windows


def brute_force(frames):
    users, counts = defaultdict(set), defaultdict(int)
    for uid, ts in frames:
        users[ts // 60 * 60].add(uid)
        counts[ts // 60 * 60] += 1
    return [(start, len(users[start]), counts[start]) for start in sorted(users)]


def test_minute_emitted_when_a_later_minute_arrives():
    windows = MinuteWindows()
    windows.add_many([("a", 60), ("b", 119), ("a", 100)])
    assert windows.take_closed() == []
    windows.add_many([("c", 120)])
    (closed,) = windows.take_closed()
    assert (closed.start, closed.end, closed.users, closed.frames) == (60, 120, {"a", "b"}, 3)


def test_frames_of_an_emitted_minute_are_counted_late_not_lost():
    windows = MinuteWindows()
    windows.add_many([("a", 60), ("b", 130), ("late", 61)])
    assert windows.late_frames == 1 and windows.counted_frames == 2
    assert [len(w.users) for w in windows.take_closed()] == [1]


def test_flush_closes_everything_and_later_frames_of_those_minutes_are_late():
    windows = MinuteWindows()
    windows.add_many([("a", 10), ("b", 70)])
    windows.flush()
    assert [w.start for w in windows.take_closed()] == [0, 60]
    windows.add_many([("c", 75), ("d", 200)])
    assert windows.late_frames == 1


frames_strategy = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 600)), max_size=200)


@given(frames=frames_strategy)
def test_sorted_input_gives_exact_counts_per_minute(frames):
    frames = sorted(frames, key=lambda f: f[1])
    assert run(frames)[0] == brute_force(frames)


@given(frames=frames_strategy, cuts=st.lists(st.integers(0, 50), max_size=10))
def test_batch_boundaries_never_change_the_records(frames, cuts):
    assert run(frames, cuts)[0] == run(frames)[0]


@given(frames=frames_strategy)
def test_every_frame_is_counted_or_late(frames):
    records, windows = run(frames)
    assert windows.counted_frames + windows.late_frames == len(frames)
    assert sum(r[2] for r in records) == windows.counted_frames


@given(frames=frames_strategy.map(lambda f: sorted(f, key=lambda x: x[1])),
       delays=st.lists(st.integers(0, 5), min_size=200, max_size=200), lateness=st.integers(0, 7))
def test_reordering_within_the_allowed_lateness_changes_nothing(frames, delays, lateness):
    """Arrival = event time + a delay of at most the lateness: every frame is then within the
    lateness of the largest earlier event time, and the records equal those of sorted input."""
    delays = [min(d, lateness) for d in delays]
    arrival = [f for _, f in sorted(zip((ts + d for (_, ts), d in zip(frames, delays)), frames),
                                    key=lambda pair: pair[0])]
    sorted_records = run_lateness(frames, lateness)
    assert run_lateness(arrival, lateness) == sorted_records
    assert sorted_records[0] == brute_force(frames)


def run_lateness(frames, lateness):
    windows = MinuteWindows(lateness)
    windows.add_many(frames)
    windows.flush()
    return [(w.start, len(w.users), w.frames) for w in windows.take_closed()], windows.late_frames
