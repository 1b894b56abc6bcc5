"""add_many's bulk in C (native/minutes.c: open_run) does what its Python twin (minutes.open_run)
does, on columns (buffers) and on lists, and a counter fed through either decides every frame alike."""
from __future__ import annotations

import copy
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uniqcount.core import partition
from uniqcount.core.minutes import OpenMinute, open_run
from uniqcount.core.partition import PartitionCounter

native = pytest.importorskip("uniqcount_native", reason="native/ is not built (pip install ./native)")
if not hasattr(native, "open_run"):
    pytest.skip("native/ was built before minutes.c (pip install ./native)", allow_module_level=True)

times_of = st.lists(st.integers(0, 600) | st.integers(0, 2**62), max_size=60)


@settings(max_examples=300, deadline=None)
@given(times=times_of, opened=st.sets(st.integers(0, 10).map(lambda m: m * 60), max_size=6),
       max_ts=st.integers(-1, 700), index=st.integers(0, 70), as_buffers=st.booleans(), data=st.data())
def test_the_compiled_run_is_the_python_run(times, opened, max_ts, index, as_buffers, data):
    users = data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=len(times), max_size=len(times)))
    minutes = {start: OpenMinute(start, {start}, 1) for start in opened}
    twin = copy.deepcopy(minutes)
    args = (array("Q", users), array("q", times)) if as_buffers else (users, times)
    if as_buffers:
        args = (memoryview(args[0]), memoryview(args[1]))
    got = native.open_run(*args, index, minutes, max_ts)
    expected = open_run(users, times, index, twin, max_ts)
    assert got == expected
    assert {s: (m.users, m.frames) for s, m in minutes.items()} == {s: (m.users, m.frames) for s, m in twin.items()}


def test_a_run_stops_at_a_new_minute_a_new_maximum_or_a_closed_minute():
    minutes = {60: OpenMinute(60), 120: OpenMinute(120)}
    assert native.open_run([1, 2, 3, 4], [60, 125, 119, 180], 0, minutes, 125) == 3  # 180: no open minute
    assert (minutes[60].users, minutes[60].frames, minutes[120].frames) == ({1, 3}, 2, 1)
    assert native.open_run([5], [126], 0, minutes, 125) == 0  # a new maximum


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 400)), max_size=120), st.integers(1, 40))
def test_a_counter_decides_every_frame_alike_through_either(frames, cut):
    """Frames out of order, late, far ahead (held): the same results and dead letters, batch by batch."""
    def run(monkeypatch_run) -> list:
        partition.OPEN_RUN = monkeypatch_run
        counter = PartitionCounter(allowed_lateness=5, outlier_jump=120)
        out = []
        for at in range(0, len(frames), cut):
            part = frames[at:at + cut]
            emitted = counter.add_many([u for u, _ in part], [t for _, t in part], list(range(at, at + len(part))))
            out.append((emitted.results, emitted.dead))
        emitted = counter.flush()
        return [*out, (emitted.results, emitted.dead), counter.counted_frames]
    saved = partition.OPEN_RUN
    try:
        assert run(native.open_run) == run(open_run)
    finally:
        partition.OPEN_RUN = saved
