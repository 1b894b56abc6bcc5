"""Rolling windows (core/rolling.py): the users of the last L seconds at each minute's end. Expected
values are brute-force distinct counts of the frames whose ts lies in the window."""
from __future__ import annotations

import math
import random

import numpy as np
from datasketches import hll_sketch, tgt_hll_type
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.helpers import add_frames
from uniqcount.core.counters import hll_relative_standard_error
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.rolling import RollingWindows, estimate, registers

T0 = 1_700_000_000 // 3600 * 3600
LG_K = 12
LENGTHS = {"10m": 600, "1h": 3600}


def test_the_estimate_of_registers_is_datasketches_own_composite_estimate():
    """Registers taken from a real HLL_8 sketch give the estimate and bounds DataSketches gives that
    sketch once it is marked out of order (its union's estimator)."""
    for n in (3000, 40_000, 1_000_000):
        sketch = hll_sketch(LG_K, tgt_hll_type.HLL_8)
        for i in range(n):
            sketch.update(i)
        image = bytearray(sketch.serialize_updatable())
        assert image[7] & 3 == 2, "in HLL mode"
        regs = np.frombuffer(bytes(image[40:40 + (1 << LG_K)]), dtype=np.uint8)
        image[5] |= 16
        theirs = hll_sketch.deserialize(bytes(image))
        assert estimate(regs, LG_K) == (round(theirs.get_estimate()), math.floor(theirs.get_lower_bound(2)),
                                        math.ceil(theirs.get_upper_bound(2)))


def test_registers_of_random_hashes_estimate_within_their_bounds():
    rng = np.random.default_rng(26)
    inside, error = 0, hll_relative_standard_error(LG_K)
    for _ in range(200):
        n = int(10 ** rng.uniform(1, 5.5))
        hashes = rng.integers(0, 2 ** 64, n, dtype=np.uint64, endpoint=False)
        users, lower, upper = estimate(registers(hashes, LG_K), LG_K)
        assert abs(users - n) <= 4 * error * n + 1, (n, users)
        inside += lower <= n <= upper
    assert inside >= 0.9 * 200


def rolled(frames, lengths, batch, restart_at=None, settle_after=7200):
    """Frames counted per minute in batches, the results through RollingWindows; at `restart_at` the
    windows are rebuilt from their entry. The latest record per key."""
    counter = PartitionCounter(5, 100_000, 0, [GRANULARITIES["minute"]], "minute", LG_K)
    rolling = RollingWindows(lengths, LG_K, settle_after)
    latest = {}
    for n, i in enumerate(range(0, len(frames), batch)):
        chunk = frames[i:i + batch]
        for result in rolling.add(add_frames(counter, chunk, chunk).results):
            latest[(result.granularity, result.start)] = result
        if n == restart_at:
            entry = rolling.entry()
            rolling = RollingWindows(lengths, LG_K, settle_after)
            rolling.restore(entry)
    for result in rolling.add(counter.flush().results):
        latest[(result.granularity, result.start)] = result
    return latest


def truth(frames, start, end):
    return len({uid for uid, ts in frames if start <= ts < end})


frames_st = st.lists(st.tuples(st.sampled_from([f"u{i}" for i in range(400)]), st.integers(T0, T0 + 3 * 3600)),
                     min_size=1, max_size=600)


@settings(max_examples=40, deadline=None)
@given(frames_st, st.integers(5, 120), st.one_of(st.none(), st.integers(0, 8)))
def test_every_window_holds_its_users_late_frames_and_restarts_included(frames, batch, restart_at):
    """Frames in any order: late ones correct the windows already published. A few hundred users
    in 4096 registers: the estimate is within its bounds and a few users of the truth."""
    lengths = {"10m": 600, "1h": 3600}
    latest = rolled(frames, lengths, batch, restart_at, settle_after=4 * 3600)
    ends = {(ts // 60 + 1) * 60 for _, ts in frames}
    assert set(latest) == {(f"rolling_{name}", end - length) for end in ends for name, length in lengths.items()}
    for (name, start), result in latest.items():
        want = truth(frames, start, result.end)
        assert result.bounds[0] <= want <= result.bounds[1], (name, start, want, result)
        assert abs(result.users - want) <= 2 + 0.02 * want
        assert result.frames == sum(1 for _, ts in frames if start <= ts < result.end)


def test_a_late_frame_corrects_the_windows_that_hold_its_minute_and_only_those():
    frames = [(f"u{i}", T0 + 60 * m + i % 60) for m in range(30) for i in range(20)]
    late = ("latecomer", T0 + 60 * 10 + 5)
    before = rolled(frames, {"10m": 600}, batch=50)
    after = rolled(frames[:500] + [late] + frames[500:], {"10m": 600}, batch=50)
    changed = {key for key in after if after[key].users != before[key].users}
    assert changed == {("rolling_10m", end - 600) for end in range(T0 + 660, T0 + 1260, 60)}
    assert all(after[key].revision == 1 and after[key].late_frames == 1 for key in changed)
    assert all(after[key].revision == 0 for key in after if key not in changed)


def test_settling_minutes_into_the_table_changes_no_value():
    rng = random.Random(5)
    frames = sorted(((f"u{rng.randrange(500)}", T0 + rng.randrange(3 * 3600)) for _ in range(3000)),
                    key=lambda f: f[1])
    settled, kept = rolled(frames, LENGTHS, 100, settle_after=120), rolled(frames, LENGTHS, 100, 4 * 3600)
    assert {k: (r.users, r.bounds, r.frames) for k, r in settled.items()} == \
        {k: (r.users, r.bounds, r.frames) for k, r in kept.items()}


def test_a_30_day_window_over_a_sparse_month_is_right():
    rng = random.Random(3)
    frames = sorted(((f"u{rng.randrange(3000)}", T0 + rng.randrange(40 * 86_400)) for _ in range(4000)),
                    key=lambda f: f[1])
    latest = rolled(frames, {"30d": 30 * 86_400}, batch=200, settle_after=3600)
    for (_, start), result in latest.items():
        want = truth(frames, start, result.end)
        assert abs(result.users - want) <= 4 * hll_relative_standard_error(LG_K) * want + 2
