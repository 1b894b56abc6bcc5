"""Stored sketches (core/sketches.py) and ranges answered from them (core/ranges.py). Expected values
come from brute force over the frames: the distinct uids whose ts lies in the part of the range the
answer says it covers."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.helpers import add_frames
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.ranges import StoredIndex, answer, tile
from uniqcount.core.sketches import SIZES, Keeping, StoredWindows

DAY = 86_400
T0 = 1_700_000_000 // DAY * DAY  # a UTC midnight
FOREVER = 10 * 365 * DAY
GRANULARITIES_COUNTED = [GRANULARITIES[g] for g in ("minute", "hour", "day")]


def counted(frames, keeping, exact_up_to="day", batch=50, retention=3 * DAY, restart_at=None):
    """Frames counted in batches, each batch's results stored and taken (one checkpoint each); at
    `restart_at` the writer is rebuilt from its ledger, as a restarted consumer's is. The index of
    what the topic keeps."""
    counter = PartitionCounter(5, retention, 0, GRANULARITIES_COUNTED, exact_up_to)
    stored = StoredWindows(keeping)
    index = StoredIndex()
    for n, i in enumerate(range(0, len(frames), batch)):
        chunk = frames[i:i + batch]
        stored.add(add_frames(counter, chunk, chunk).results)
        for key, value in stored.take():
            index.add(key, value)
        if n == restart_at:
            ledger = stored.entry()
            stored = StoredWindows(keeping)
            stored.restore(ledger)
    stored.add(counter.flush().results)
    for key, value in stored.take():
        index.add(key, value)
    return index, stored


def brute(frames, start, end, missing):
    def covered(ts):
        return start <= ts < end and not any(a <= ts < b for a, b in missing)
    return len({uid for uid, ts in frames if covered(ts)})


def keep(minute=FOREVER, hour=FOREVER, day=FOREVER, exact_for=FOREVER, small=0):
    return Keeping({"minute": minute, "hour": hour, "day": day}, exact_for, 12, small)


frames_st = st.lists(st.tuples(st.sampled_from([f"u{i}" for i in range(60)]),
                               st.integers(T0, T0 + 2 * DAY + 7200)), min_size=1, max_size=300)
edges = st.integers(T0 - 3600, T0 + 2 * DAY + 10_000)


@settings(max_examples=60, deadline=None)
@given(frames_st, st.lists(st.tuples(edges, edges), min_size=1, max_size=8), st.integers(5, 80),
       st.one_of(st.none(), st.integers(0, 5)))
def test_inside_the_exact_horizon_any_range_is_exactly_the_distinct_count_of_what_it_covers(
        frames, ranges, batch, restart_at):
    """Late and out of order frames (drawn in any order) make corrections: they reach the store."""
    index, _ = counted(frames, keep(), batch=batch, restart_at=restart_at)
    for a, b in ranges:
        start, end = min(a, b), max(a, b) + 1
        got = answer(index, start, end)
        assert got["estimate"] == "exact"
        assert got["unique_users"] == brute(frames, start, end, got["missing"])
        assert got["complete"] == (not got["missing"])
        every_ts = {ts for _, ts in frames}
        assert not any(a <= ts < b and start <= ts < end for ts in every_ts for a, b in got["missing"]
                       if b - a >= 60 and a % 60 == 0 and b % 60 == 0), "a minute holding frames is missing"


def test_a_range_of_whole_minutes_with_every_window_stored_is_complete_and_tiled_by_the_fewest_windows():
    """Every minute of three days holds a frame, so every window is stored; the fewest aligned windows
    that tile a range are found independently by dynamic programming over its minutes."""
    frames = [(f"u{m % 500}", T0 + 60 * m + 7) for m in range(3 * 1440)]
    index, _ = counted(frames, keep(), batch=500)
    rng = random.Random(7)
    for _ in range(40):
        a, b = sorted(rng.sample(range(0, 3 * 1440 + 1), 2))
        start, end = T0 + 60 * a, T0 + 60 * b
        tiles, missing = tile(index, start, end, lambda g, s: s in index.windows[g])
        assert missing == [] and len(tiles) == fewest(start, end)
        assert sorted(sum((list(range(s, s + SIZES[g], 60)) for g, s in tiles), [])) == list(range(start, end, 60))
        assert answer(index, start, end)["unique_users"] == brute(frames, start, end, [])


def fewest(start, end):
    best = {start: 0}
    for x in range(start + 60, end + 1, 60):
        best[x] = min(best[x - size] + 1 for size in SIZES.values() if (x - size) % size == 0 and x - size >= start)
    return best[end]


def test_beyond_the_exact_horizon_ranges_are_sketched_and_the_bounds_hold_at_their_rate():
    """exact_for 0: every window keeps its sketch only. Over many ranges of a few hundred to ~18,000
    users, the 95% bounds hold the brute-force count in at least 90% of them."""
    rng = random.Random(3)
    frames = [(f"user-{rng.randrange(20_000)}", T0 + rng.randrange(2 * DAY)) for _ in range(60_000)]
    frames.sort(key=lambda f: f[1])
    index, _ = counted(frames, keep(exact_for=0), exact_up_to="day", batch=5000)
    assert not any(w.exact for windows in index.windows.values() for w in windows.values())
    inside = total = 0
    for _ in range(200):
        a, b = sorted(rng.sample(range(0, 2 * DAY // 60), 2))
        got = answer(index, T0 + 60 * a, T0 + 60 * b)
        truth = brute(frames, T0 + 60 * a, T0 + 60 * b, got["missing"])
        assert got["estimate"] == "hll" and got["lower_bound"] <= got["unique_users"] <= got["upper_bound"]
        inside += got["lower_bound"] <= truth <= got["upper_bound"]
        total += 1
    assert inside / total >= 0.9


def test_windows_past_retention_get_tombstones_and_a_range_over_them_is_incomplete():
    frames = [(f"u{m % 97}", T0 + 60 * m) for m in range(3 * 1440)]
    index, stored = counted(frames, keep(minute=6 * 3600, hour=DAY, exact_for=3600), batch=700)
    newest = T0 + 3 * DAY
    minutes = index.windows["minute"]
    assert min(minutes) == newest - 6 * 3600 and len(minutes) == 6 * 60
    assert min(index.windows["hour"]) == newest - DAY
    assert {s for s, w in minutes.items() if w.exact} == set(range(newest - 3600, newest, 60))
    assert stored.exact["minute"].keys() == set(range(newest - 3600, newest, 60))
    old = answer(index, T0, T0 + 3600)  # minutes and hours gone, the day still there but not inside the range
    assert old["complete"] is False and old["missing"] == [[T0, T0 + 3600]] and old["unique_users"] == 0
    assert answer(index, newest - 3600, newest)["estimate"] == "exact"
    older = answer(index, newest - 7200, newest)  # an hour past the exact horizon: its sketch
    assert older["complete"] and older["estimate"] == "hll" and older["windows"] == [
        f"hour:{newest - 7200}", f"hour:{newest - 3600}"]


@pytest.mark.parametrize("restart_at", [0, 3, 9])
def test_a_writer_restored_from_its_ledger_writes_and_forgets_as_an_uninterrupted_one(restart_at):
    frames = [(f"u{(m * 7) % 301}", T0 + 37 * m) for m in range(8000)]
    keeping = keep(minute=4 * 3600, hour=DAY, exact_for=1800)
    whole, _ = counted(frames, keeping, batch=600)
    restarted, _ = counted(frames, keeping, batch=600, restart_at=restart_at)
    assert {g: sorted(w) for g, w in whole.windows.items()} == {g: sorted(w) for g, w in restarted.windows.items()}
    assert {g: sorted(s for s, w in ws.items() if w.has_hashes) for g, ws in whole.windows.items()} == \
        {g: sorted(s for s, w in ws.items() if w.has_hashes) for g, ws in restarted.windows.items()}


def test_small_windows_keep_their_hashes_alone_for_life_and_unite_with_sketched_ones():
    """A window of at most 40 users (320 bytes of hashes) is one record of hashes: no sketch, exact
    past the horizon, gone at retention; a correction that makes it big gives it a sketch. Ranges
    over small windows past the horizon are exact; over small and big ones, sketched within bounds."""
    rng = random.Random(11)
    quiet = [(f"q{rng.randrange(30)}", T0 + rng.randrange(DAY)) for _ in range(2000)]  # ~1.4 a minute
    busy = [(f"b{rng.randrange(5000)}", T0 + DAY + rng.randrange(7200)) for _ in range(20_000)]
    frames = sorted(quiet + busy, key=lambda f: f[1])
    records = []
    counter = PartitionCounter(5, 3 * DAY, 0, GRANULARITIES_COUNTED, "day")
    stored = StoredWindows(keep(day=2 * DAY, exact_for=3600, small=320))
    index = StoredIndex()
    for i in range(0, len(frames), 500):
        stored.add(add_frames(counter, frames[i:i + 500], frames[i:i + 500]).results)
        for key, value in stored.take():
            records.append(key)
            index.add(key, value)
    keys = {key.decode() for key in records}
    quiet_minutes = {ts // 60 * 60 for _, ts in quiet}
    assert all(f"minute:{m}:exact:0" in keys and f"minute:{m}:hll" not in keys for m in quiet_minutes)
    assert set(stored.small["minute"]) == quiet_minutes  # the busy ones are past 40 users
    assert not stored.exact["minute"].keys() & quiet_minutes
    first_hours = answer(index, T0, T0 + 6 * 3600)
    assert first_hours["estimate"] == "exact" and first_hours["unique_users"] == brute(frames, T0, T0 + 6 * 3600, [])
    both = answer(index, T0 + DAY - 3600, T0 + DAY + 1800)  # busy minutes past the horizon: sketches
    truth = brute(frames, T0 + DAY - 3600, T0 + DAY + 1800, both["missing"])
    assert both["estimate"] == "hll" and both["complete"]
    assert abs(both["unique_users"] - truth) <= 4 * 0.0163 * truth  # lg_k 12: RSE 1.63%

    ledger = stored.entry()
    again = StoredWindows(keep(day=2 * DAY, exact_for=3600, small=320))
    again.restore(ledger)
    assert again.small == stored.small and again.exact == stored.exact

    late = [("q-late", T0 + 30)] + [(f"late{n}", T0 + 30) for n in range(60)]  # the first minute outgrows 40
    stored.add(add_frames(counter, late, late).results)
    changed = dict(stored.take())
    assert changed[f"minute:{T0}:hll".encode()] is not None and T0 not in stored.small["minute"]
