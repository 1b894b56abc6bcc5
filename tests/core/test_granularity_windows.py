"""Every granularity from one stream: calendar boundaries, feeding from closed minutes, late frames
per granularity, provisional and HLL records. Expected windows come from `datetime`, not from
uniqcount.core.granularities."""
from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.helpers import Collected, add_frames, brute_force, calendar_start, collected
from uniqcount.core.counters import hll_relative_standard_error
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.runtime import counting
from uniqcount.runtime.config import load
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outputs import CountedOnly, Records

ALL = list(GRANULARITIES.values())


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def run(windows: Collected, frames: list[tuple[str, int]]):
    """All frames in one batch, then the end of input: (results, dead letters)."""
    add_frames(windows, frames, frames)
    windows.flush()
    return windows.take()


def latest(results) -> dict[tuple[str, int], tuple[int, int]]:
    last = {}
    for r in results:
        last[r.granularity, r.start] = (r.users, r.frames)
    return last


NEW_YEAR = utc(2024, 1, 1)  # a Monday; 2023-12-31 is a Sunday in ISO week 2023-W52


def test_year_change_closes_minute_to_year_at_the_same_instant():
    windows = collected(allowed_lateness=0, granularities=ALL, exact_up_to="year")
    add_frames(windows, [("a", NEW_YEAR - 1), ("b", NEW_YEAR - 1)], "ab")
    assert windows.take()[0] == []
    add_frames(windows, [("c", NEW_YEAR)], "c")
    results, _ = windows.take()
    final = {(r.granularity, r.start, r.end) for r in results if r.final}
    assert final == {
        ("minute", NEW_YEAR - 60, NEW_YEAR), ("hour", NEW_YEAR - 3600, NEW_YEAR),
        ("day", utc(2023, 12, 31), NEW_YEAR), ("week", utc(2023, 12, 25), NEW_YEAR),
        ("month", utc(2023, 12, 1), NEW_YEAR), ("year", utc(2023, 1, 1), NEW_YEAR)}
    assert all(r.users == 2 and r.frames == 2 for r in results if r.final)


def test_leap_day_and_an_iso_week_across_a_year_change():
    frames = [("a", utc(2024, 2, 28, 23, 59, 59)), ("b", utc(2024, 2, 29, 12)), ("c", utc(2024, 3, 1)),
              ("d", utc(2020, 12, 31, 12)), ("e", utc(2021, 1, 3, 23, 59, 59)), ("f", utc(2021, 1, 4))]
    frames.sort(key=lambda f: f[1])
    results, dead = run(collected(allowed_lateness=0, granularities=ALL, exact_up_to="year"), frames)
    assert dead == []
    spans = {(r.granularity, r.start): r.end for r in results}
    assert spans["day", utc(2024, 2, 29)] == utc(2024, 3, 1)
    assert spans["month", utc(2024, 2, 1)] == utc(2024, 3, 1)  # 29 days
    assert spans["year", utc(2024, 1, 1)] == utc(2025, 1, 1)
    # 2020-12-31 (Thursday) to 2021-01-03 (Sunday) are ISO week 2020-W53, from Monday 2020-12-28
    assert latest(results)["week", utc(2020, 12, 28)] == (2, 2)
    assert spans["week", utc(2020, 12, 28)] == utc(2021, 1, 4)
    assert latest(results) == brute_force(frames)


def test_longer_windows_get_a_provisional_record_whenever_a_minute_closes():
    windows = collected(allowed_lateness=0, granularities=ALL)
    add_frames(windows, [("a", 60), ("b", 61), ("a", 125)], "aba")
    results, _ = windows.take()
    assert [(r.granularity, r.final, r.users, r.frames) for r in results] == [
        ("minute", True, 2, 2), ("hour", False, 2, 2), ("day", False, 2, 2), ("week", False, 2, 2),
        ("month", False, 2, 2), ("year", False, 2, 2)]
    day = results[2]
    assert (day.granularity, day.estimate, day.bounds[0]) == ("day", "hll", 2) and day.bounds[1] <= 3
    assert results[1].estimate == "exact" and results[1].bounds is None


def test_early_records_count_the_open_minute_in_every_window():
    windows = collected(allowed_lateness=0, granularities=ALL)
    add_frames(windows, [("a", 60), ("b", 130), ("c", 131)], "abc")  # minute 60 closed, minute 120 open
    windows.take()
    early = windows.provisional()
    assert [(r.granularity, r.start, r.users, r.frames, r.final) for r in early] == [
        ("minute", 120, 2, 2, False), ("hour", 0, 3, 3, False), ("day", 0, 3, 3, False),
        ("week", calendar_start("week", 0), 3, 3, False), ("month", 0, 3, 3, False), ("year", 0, 3, 3, False)]
    assert windows.provisional() == []
    add_frames(windows, [("a", 132)], "a")
    assert [(r.granularity, r.users, r.frames) for r in windows.provisional()][:2] == [("minute", 3, 3),
                                                                                       ("hour", 3, 4)]


def test_a_frame_too_late_for_its_minute_corrects_the_hour_or_counts_in_the_open_day():
    windows = collected(allowed_lateness=0, late_retention=200, granularities=ALL[:3], exact_up_to="day")
    add_frames(windows, [("a", 10), ("b", 3700)], "ab")  # hour 0 closed and kept until 3600 + 200
    windows.take()
    add_frames(windows, [("late", 20)], ["late"])
    results, dead = windows.take()
    assert dead == []
    assert [(r.granularity, r.users, r.final, r.revision, r.late_frames) for r in results] == [
        ("hour", 2, True, 1, 1), ("day", 2, False, 0, 0)]  # b's minute is still open
    assert windows.sets[0].too_late == 1  # minute 0 ended 3640 s before the watermark: past its retention
    add_frames(windows, [("c", 3700 + 7200)], "c")
    windows.take()
    add_frames(windows, [("later", 30)], ["later"])
    assert windows.take()[1] == []  # still counted by the open day
    assert windows.sets[1].too_late == 1
    add_frames(windows, [("c", 2 * 86_400), ("much-later", 40)], ["c", "much-later"])
    assert windows.take()[1] == [("too_late", "much-later")]  # the day closed too: counted nowhere


def test_hll_records_carry_bounds_that_hold_the_truth():
    windows = collected(allowed_lateness=0, granularities=ALL)
    frames = [(f"user-{i % 30_000}", 3600 * 24 + i // 10) for i in range(144_000)]  # 4 hours
    results, _ = run(windows, frames)
    days = [r for r in results if r.granularity == "day" and r.final]
    (day,) = days
    low, high = day.bounds
    assert day.estimate == "hll" and low <= 30_000 <= high
    assert abs(day.users - 30_000) <= 3 * hll_relative_standard_error(14) * 30_000
    hours = [r for r in results if r.granularity == "hour" and r.final]
    assert [r.users for r in hours] == [30_000, 30_000, 30_000, 30_000]  # exact up to the hour


def test_one_parse_per_frame_whatever_the_number_of_granularities(monkeypatch):
    calls = []
    parse = counting.parse_batch
    monkeypatch.setattr(counting, "parse_batch", lambda values: calls.extend(values) or parse(values))
    frames = [f'{{"uid":"u{i % 7}","ts":{1000 + i}}}'.encode() for i in range(500)]
    for names in ("minute", "minute,hour,day,week,month,year"):
        calls.clear()
        settings_ = load(flags={"GRANULARITIES": [GRANULARITIES[n] for n in names.split(",")]})
        records = Records(quiet=True)
        run_ = Counting(settings_, records, CountedOnly())
        run_.process(frames, frames)
        run_.flush_all()
        assert calls == frames
        assert records.written["final"] == 9 + (len(names.split(",")) - 1)  # minutes 960..1440, then one each


window_frames = st.lists(st.tuples(st.sampled_from("abcdefgh"),
                                   st.integers(NEW_YEAR - 3 * 86_400, NEW_YEAR + 3 * 86_400)), max_size=120)


@settings(deadline=None)
@given(frames=window_frames)
def test_with_enough_retention_any_order_ends_exact_at_every_granularity(frames):
    results, dead = run(collected(0, 7 * 86_400, granularities=ALL, exact_up_to="year"), frames)
    assert dead == [] and latest(results) == brute_force(frames)


@settings(deadline=None)
@given(frames=window_frames.map(lambda f: sorted(f, key=lambda x: x[1])),
       delays=st.lists(st.integers(0, 5), min_size=120, max_size=120), retention=st.sampled_from([0, 60, 3600]))
def test_reordering_within_the_lateness_changes_no_granularity(frames, delays, retention):
    arrival = [f for _, f in sorted(zip((ts + d for (_, ts), d in zip(frames, delays)), frames),
                                    key=lambda pair: pair[0])]
    in_order = run(collected(5, retention, 0, ALL, "year"), frames)
    disordered = run(collected(5, retention, 0, ALL, "year"), arrival)
    assert disordered == in_order and in_order[1] == []
    assert latest(in_order[0]) == brute_force(frames)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(utc(2016, 12, 31, 23, 50), utc(2017, 1, 1, 0, 10))),
                min_size=1, max_size=40),
       st.integers(0, 10), st.sampled_from([0, 600]))
def test_at_the_end_of_input_every_window_of_every_granularity_gets_its_final_record(frames, lateness, jump):
    """The last record of every window a counted frame fell in is final, whatever was still open."""
    results, dead = run(collected(lateness, 3600, jump, ALL, "hour"), frames)
    last = {}
    for r in results:
        last[r.granularity, r.start] = r
    counted = brute_force(frames) if not dead else None
    assert all(r.final for r in last.values()), [k for k, r in last.items() if not r.final]
    if counted is not None:
        assert set(last) == set(counted)


@settings(deadline=None)
@given(frames=window_frames, cuts=st.lists(st.integers(0, 40), max_size=6), retention=st.sampled_from([0, 60, 7 * 86_400]))
def test_a_partition_quiet_after_any_batch_has_every_window_final_and_exact_at_once(frames, cuts, retention):
    """Quiet after each batch (the stream resumes after): every window has a final record at once,
    exact for the frames so far (with a retention that keeps every late frame), whatever event time
    still has to pass. A window's final records are revisions 0, 1, 2, ... each with more frames
    than the last: one that nothing reopened is not published again. A retention of 0 keeps what
    was published early all the same."""
    windows = collected(0, retention, granularities=ALL, exact_up_to="year")
    done, results = 0, []
    for size in [*cuts, len(frames)]:
        batch = frames[done:done + size]
        done += len(batch)
        add_frames(windows, batch, batch)
        windows.close_quiet()
        results += windows.take()[0]
        last = {(r.granularity, r.start): r for r in results}
        assert all(r.final for r in last.values())
        if retention > 6 * 86_400:
            assert {k: (r.users, r.frames) for k, r in last.items()} == brute_force(frames[:done])
    finals = {}
    for r in results:
        if r.final:
            finals.setdefault((r.granularity, r.start), []).append((r.revision, r.frames))
    for key, made in finals.items():
        assert [revision for revision, _ in made] == list(range(len(made))), key
        assert all(a[1] < b[1] for a, b in zip(made, made[1:])), key


def test_the_end_of_input_closes_the_hour_its_last_minute_opened():
    frames = [("a", utc(2016, 7, 11, 13, 58, 50)), ("b", utc(2016, 7, 11, 13, 59, 50)), ("c", utc(2016, 7, 11, 14, 0, 10))]
    results, _ = run(collected(5, 3600, 600, [GRANULARITIES["minute"], GRANULARITIES["hour"]], "hour"), frames)
    finals = {(r.granularity, r.start): r.users for r in results if r.final}
    assert finals == {("minute", utc(2016, 7, 11, 13, 58)): 1, ("minute", utc(2016, 7, 11, 13, 59)): 1,
                      ("minute", utc(2016, 7, 11, 14, 0)): 1, ("hour", utc(2016, 7, 11, 13)): 2,
                      ("hour", utc(2016, 7, 11, 14)): 1}


@given(st.permutations([0, 1, 2]), st.lists(st.integers(0, 590), min_size=3, max_size=3))
def test_the_first_frames_of_a_stream_are_never_late(order, offsets):
    """The outlier guard holds the first frames; none of them is late to another once released,
    whatever their order, when they lie within OUTLIER_JUMP of each other."""
    base = utc(2016, 7, 11, 13, 50)
    frames = [(str(i), base + offsets[i]) for i in order]
    windows = collected(5, 3600, 600, [GRANULARITIES["minute"]], "hour")
    results, dead = run(windows, frames)
    assert windows.late_frames == 0 and not dead
    assert all(r.revision == 0 for r in results)
