"""Partitions counted apart and merged (core/merge.py), and the state as a value (core/state.py).
Expected values come from brute force over the frames, or from an uninterrupted single run."""
from __future__ import annotations

from collections import defaultdict
from unittest.mock import patch

import pytest
from hypothesis import given, settings, strategies as st

from tests.core_helpers import brute_force
from uniqcount.core import state
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.merge import Partitions
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.state import FormatError, Snapshots, merge_entry, restore, restore_merge

ALL = list(GRANULARITIES.values())
USERS = [f"user-{i}" for i in range(40)]


def maker(lateness: int = 5, retention: int = 7 * 86_400, jump: int = 0, exact_up_to: str = "hour"):
    return lambda: PartitionCounter(lateness, retention, jump, ALL, exact_up_to)


def latest(results):
    """What a compacted output topic keeps: the last record per window."""
    return {(r.granularity, r.start): r for r in results}


def interleaved(per_partition, sizes):
    """Batches (partition, frames): each partition's frames in their order, the partitions taking
    turns with the batch sizes drawn."""
    cursors = {p: 0 for p in per_partition}
    turn = 0
    while any(cursors[p] < len(frames) for p, frames in per_partition.items()):
        for p, frames in per_partition.items():
            size = sizes[turn % len(sizes)]
            turn += 1
            if cursors[p] < len(frames):
                yield p, frames[cursors[p]:cursors[p] + size]
                cursors[p] += size


def run_batches(partitions, batches, after_each=lambda: None):
    results, dead = [], []
    for p, batch in batches:
        emitted = partitions.add_many(p, batch, batch)
        results += emitted.results
        dead += emitted.dead
        after_each()
    return results, dead


def run(partitions, batches):
    results, dead = run_batches(partitions, batches)
    emitted = partitions.flush()
    return results + emitted.results, dead + emitted.dead


def late_in_own_partition(per_partition, lateness):
    """Frames whose minute ended by their partition's watermark (largest earlier time - lateness)."""
    late = 0
    for frames in per_partition.values():
        top = None
        for _, ts in frames:
            late += top is not None and ts - ts % 60 + 60 <= top - lateness
            top = ts if top is None else max(top, ts)
    return late


base = 1_700_000_000  # 2023-11-14 22:13:20 UTC: the hour, day and (soon) the week change in range
frames_strategy = st.lists(st.tuples(st.sampled_from(USERS), st.integers(base, base + 3 * 3600)),
                           min_size=1, max_size=150)


@settings(max_examples=150, deadline=None)
@given(frames=frames_strategy, owners=st.lists(st.integers(0, 3), min_size=1, max_size=12),
       sizes=st.lists(st.integers(1, 20), min_size=1, max_size=8), lateness=st.integers(0, 30))
def test_any_split_over_partitions_gives_the_answers_of_one(frames, owners, sizes, lateness):
    per_partition = defaultdict(list)
    for i, frame in enumerate(frames):  # the owners drawn, in turn
        per_partition[owners[i % len(owners)]].append(frame)
    one, one_dead = run(Partitions(maker(lateness)), [(0, frames)])
    split_partitions = Partitions(maker(lateness))
    split, split_dead = run(split_partitions, interleaved(dict(per_partition), sizes))
    truth = brute_force(frames)
    assert one_dead == split_dead == []
    for answers in (latest(one), latest(split)):
        assert {key: (r.users, r.frames) for key, r in answers.items()} == truth
        assert all(r.final for r in answers.values())
    assert split_partitions.total("late_frames") == late_in_own_partition(per_partition, lateness)
    finals = [(r.granularity, r.start, r.revision) for r in split if r.final]
    assert len(finals) == len(set(finals)), "a final record with the same revision twice"


def test_a_window_is_final_once_every_partition_is_past_it():
    partitions = Partitions(maker(lateness=0))
    partitions.assign(0), partitions.assign(1)  # owned from the start, as a consumer's assignment
    first = partitions.add_many(0, [("a", base), ("b", base + 70)], "ab").results
    minute = base - base % 60
    assert [(r.start, r.users, r.final) for r in first if r.granularity == "minute"] == [(minute, 1, False)]
    assert partitions.add_many(1, [("c", base + 1), ("a", base + 2)], "ca").results == []  # an open minute
    early = partitions.provisional()  # partition 0's closed minute with partition 1's open one
    assert [(r.start, r.users, r.final) for r in early if r.granularity == "minute"] == [
        (minute, 2, False), (minute + 60, 1, False)]
    third = partitions.add_many(1, [("d", base + 90)], "d").results
    assert [(r.start, r.users, r.frames, r.final, r.revision) for r in third if r.granularity == "minute"] == [
        (minute, 2, 3, True, 0)]


def test_an_idle_partition_does_not_hold_the_others_back():
    partitions = Partitions(maker(lateness=0))
    partitions.assign(1)  # owned, never a frame
    out = partitions.add_many(0, [("a", base), ("b", base + 70)], "ab").results
    assert not any(r.final for r in out)
    out = partitions.advance_idle(1, None).results
    assert [(r.granularity, r.final) for r in out] == [("minute", True)]
    assert partitions.add_many(1, [("c", base + 3)], "c").results == []  # it wakes: its own minute opens
    closed = partitions.add_many(1, [("d", base + 100)], "d").results  # and closes: a correction
    assert [(r.granularity, r.users, r.revision) for r in closed if r.final] == [("minute", 2, 1)]


def test_partial_scope_marks_every_record():
    partitions = Partitions(maker(lateness=0))
    partitions.scope = (0, 2)
    out = partitions.add_many(0, [("a", base), ("b", base + 70)], "ab").results
    assert out and all(r.partitions == (0, 2) for r in out)
    assert all(r.partitions == (0, 2) for r in partitions.provisional())


def apply(log, changes):
    log.update(changes.changed)
    for key in changes.dropped:
        log.pop(key, None)


def reconciliation(partitions):
    return ({name: partitions.total(name) for name in ("counted_frames", "late_frames", "frames_in",
                                                        "held_frames", "corrections")},
            partitions.rejected, partitions.too_late())


@settings(max_examples=100, deadline=None)
@given(frames=st.lists(st.tuples(st.sampled_from(USERS), st.integers(base, base + 2 * 3600)), max_size=200),
       owners=st.lists(st.integers(0, 2), min_size=1, max_size=12),
       sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6), stops=st.tuples(st.integers(0, 40), st.integers(0, 40)),
       lateness=st.integers(0, 10), retention=st.sampled_from([0, 120, 3600]), jump=st.sampled_from([0, 600]),
       exact_up_to=st.sampled_from(["minute", "hour", "year"]), part_hashes=st.sampled_from([2, 1 << 16]))
def test_snapshot_restore_and_go_on_is_an_uninterrupted_run(frames, owners, sizes, stops, lateness, retention,
                                                          jump, exact_up_to, part_hashes):
    """Two crashes: the second restore reads a changelog that the first restore's snapshots went on
    writing (Snapshots.restored), with users split into parts of `part_hashes`."""
    with patch.object(state, "PART_HASHES", part_hashes):
        snapshot_restore_and_go_on(frames, owners, sizes, stops, lateness, retention, jump, exact_up_to)


def snapshot_restore_and_go_on(frames, owners, sizes, stops, lateness, retention, jump, exact_up_to):
    per_partition = defaultdict(list)
    for i, frame in enumerate(frames):  # the owners drawn, in turn
        per_partition[owners[i % len(owners)]].append(frame)
    batches = list(interleaved(dict(per_partition), sizes))
    make = maker(lateness, retention, jump, exact_up_to)
    whole = Partitions(make)
    expected, _ = run(whole, batches)
    cuts = sorted(min(stop, len(batches)) for stop in stops)
    logs: dict[int, dict] = defaultdict(dict)
    live, snapshots, done, records = Partitions(make), {}, 0, []

    def snapshot():  # incremental, after every batch, each applied as a changelog would keep it
        for p, counter in live.counters.items():
            apply(logs[p], snapshots.setdefault(p, Snapshots(counter)).take())

    for cut in cuts:
        made, _ = run_batches(live, batches[done:cut], snapshot)
        records += made
        merge, live, snapshots, done = merge_entry(live), Partitions(make), {}, cut
        for p, log in logs.items():
            snapshots[p] = Snapshots.restored(restore(live.assign(p), log, make_ref=tuple), log)
        restore_merge(live, merge)
    after, _ = run(live, batches[done:])
    assert records + after == expected
    assert reconciliation(live) == reconciliation(whole)


def test_users_are_split_into_parts_that_fit_a_record(monkeypatch):
    monkeypatch.setattr(state, "PART_HASHES", 1000)
    counter = PartitionCounter(0, 3600, 0, ALL[:2], "hour")
    counter.add_many([(f"u{i}", base) for i in range(2500)] + [("next", base + 60)], [None] * 2501)
    entries = Snapshots(counter).full()
    hour = base - base % 3600
    assert sorted(k for k in entries if k.startswith(f"hour/{hour}/")) == [f"hour/{hour}/{n}" for n in range(3)]
    assert max(map(len, entries.values())) < 8 * 1000 + 16
    restored = restore(PartitionCounter(0, 3600, 0, ALL[:2], "hour"), entries)
    assert restored.sets[1].open[hour].counter.count() == 2500


def test_snapshots_are_incremental_and_compact():
    counter = PartitionCounter(0, 3600, 0, ALL[:2], "hour")
    snapshots = Snapshots(counter)
    counter.add_many([(f"u{i}", base) for i in range(1000)], [None] * 1000)
    minute = base - base % 60
    open_minute = f"open-minute/{minute}"
    full = snapshots.take()
    assert set(full.changed) == {"clock", open_minute, f"{open_minute}/0"} and full.dropped == []
    assert len(full.changed[f"{open_minute}/0"]) < 8 * 1000 + 16  # 8 bytes a user
    assert snapshots.take() == ({}, [])  # nothing changed
    counter.add_many([("u1", base + 1), ("new", base + 2)], [None] * 2)
    grown = snapshots.take()  # the header, and a part with the one new user
    assert set(grown.changed) == {"clock", open_minute, f"{open_minute}/1"}
    assert len(grown.changed[f"{open_minute}/1"]) < 8 + 16
    counter.add_many([("late-comer", base + 61)], [None])  # the minute closes into the minute and hour windows
    closed = snapshots.take()
    assert sorted(closed.dropped) == [open_minute, f"{open_minute}/0", f"{open_minute}/1"]
    hour = base - base % 3600
    assert set(closed.changed) == {"clock", f"minute/{minute}", f"minute/{minute}/0", f"hour/{hour}",
                                   f"hour/{hour}/0", f"open-minute/{minute + 60}", f"open-minute/{minute + 60}/0"}


def test_an_entry_of_another_format_version_is_refused():
    counter = PartitionCounter(0, 3600, 0, ALL[:1], "hour")
    counter.add_many([("a", base)], [None])
    entries = Snapshots(counter).full()
    entries["clock"] = b"\x92\x09\x00"  # version 9
    with pytest.raises(FormatError, match="version 9"):
        restore(PartitionCounter(0, 3600, 0, ALL[:1], "hour"), entries)
