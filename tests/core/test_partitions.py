"""Partitions counted apart (core/partition_counters.py) and merged from their partial results (core/partials.py,
core/merger.py), and the state as a value (core/state.py). Expected values come from brute force over
the frames, or from an uninterrupted run."""
from __future__ import annotations

from collections import defaultdict
from unittest.mock import patch

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.core.helpers import add_frames, brute_force, calendar_start
from uniqcount.core import userset
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.merger import Merger, merger_entry, merger_state, restored_merger
from uniqcount.core.partials import WindowPart, mark_record, parse, window_records
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.partition_counters import PartitionCounters
from uniqcount.core.state import FormatError, Snapshots, restore

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


def all_partials(partitions):
    """(partition, result) of every partition's partial results since the last call."""
    return [(p, result) for p in sorted(partitions.counters) for result in partitions.take_partials(p)]


def run_batches(partitions, batches, after_each=lambda: None):
    """Records (of partials: the partial results, as (partition, result) after each batch) and dead
    letters. A batch None: the partition went quiet."""
    results, dead = [], []
    for p, batch in batches:
        emitted = partitions.close_quiet(p) if batch is None else add_frames(partitions, p, batch, batch)
        results += emitted.results + all_partials(partitions)
        dead += emitted.dead
        after_each()
    return results, dead


def run(partitions, batches):
    results, dead = run_batches(partitions, batches)
    emitted = partitions.flush()
    return results + emitted.results + all_partials(partitions), dead + emitted.dead


class Topic:
    """The partials topic as the merger reads it: every record sent, in order, and its latest per key."""

    def __init__(self):
        self.log, self.latest = [], {}

    def send(self, records):
        for key, value in records:
            self.log.append((key, value))
            if value is None:
                self.latest.pop(key, None)
            else:
                self.latest[key] = value


def checkpoint(partitions, topic, keyed=False):
    """What a consumer's checkpoint sends: window parts, then every mark."""
    topic.send([r for p, result in all_partials(partitions) for r in window_records(p, result, keyed)])
    topic.send([mark_record(mark) for mark in partitions.marks()])


def merge(merger, records):
    """The merger reads records and publishes what is due."""
    for key, value in records:
        if value is not None:
            merger.add(parse(key, value))
    out = merger.ready()
    return out


def merged_run(frames_of, sizes, lateness=5, retention=7 * 86_400, keyed=False, read_every=1):
    """Partitions counted apart, a checkpoint after each batch; the merger reads the partials topic
    after every `read_every` checkpoints. Returns the merged records, the partitions and the merger."""
    make = maker(lateness, retention)
    partitions, topic = PartitionCounters(make, scaled_out=True), Topic()
    for p in frames_of:
        partitions.assign(p)
    merger, read, results = Merger(make().sets, len(frames_of)), 0, []
    for turn, (p, batch) in enumerate(interleaved(frames_of, sizes)):
        add_frames(partitions, p, batch, batch)
        checkpoint(partitions, topic, keyed)
        if turn % read_every == 0:
            results += merge(merger, topic.log[read:])
            read = len(topic.log)
    partitions.flush()
    checkpoint(partitions, topic, keyed)
    return results + merge(merger, topic.log[read:]), partitions, merger


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
    per_partition = split(frames, owners)
    one, one_dead = run(PartitionCounters(maker(lateness)), [(0, frames)])
    merged, partitions, _ = merged_run(per_partition, sizes, lateness, read_every=sizes[0] % 3 + 1)
    truth = brute_force(frames)
    assert one_dead == []
    for answers in (latest(one), latest(merged)):
        assert {key: (r.users, r.frames) for key, r in answers.items()} == truth
        assert all(r.final for r in answers.values())
    assert partitions.total("late_frames") == late_in_own_partition(per_partition, lateness)
    revisions = defaultdict(list)
    for r in merged:
        revisions[(r.granularity, r.start)].append(r.revision)
    assert all(revs == list(range(len(revs))) for revs in revisions.values()), "revisions 0, 1, 2, ... each once"


def split(frames, owners):
    per_partition = defaultdict(list)
    for i, frame in enumerate(frames):  # the owners drawn, in turn
        per_partition[owners[i % len(owners)]].append(frame)
    for p in range(max(per_partition) + 1):
        per_partition.setdefault(p, [])  # a partition of the topic that got nothing
    return dict(sorted(per_partition.items()))


def minutes(results):
    return [(r.start, r.users, r.frames, r.revision) for r in results if r.granularity == "minute"]


def test_a_window_is_final_once_every_partition_is_past_it():
    make = maker(lateness=0)
    partitions, topic, merger = PartitionCounters(make, scaled_out=True), Topic(), Merger(make().sets, 2)
    minute = base - base % 60
    add_frames(partitions, 0, [("a", base), ("b", base + 70)], "ab")
    checkpoint(partitions, topic)
    assert merge(merger, topic.log) == []  # partition 1 is not heard of: it holds everything back
    add_frames(partitions, 1, [("c", base + 1), ("a", base + 2)], "ca")
    checkpoint(partitions, topic)
    assert merge(merger, topic.log) == []  # its minute is open
    add_frames(partitions, 1, [("d", base + 90)], "d")
    checkpoint(partitions, topic)
    assert minutes(merge(merger, topic.log)) == [(minute, 2, 3, 0)]


def test_an_idle_partition_does_not_hold_the_others_back():
    make = maker(lateness=0)
    partitions, topic, merger = PartitionCounters(make, scaled_out=True), Topic(), Merger(make().sets, 2)
    partitions.assign(1)  # owned, never a frame
    add_frames(partitions, 0, [("a", base), ("b", base + 70)], "ab")
    checkpoint(partitions, topic)
    assert merge(merger, topic.log) == []
    partitions.advance_idle(1, None)
    checkpoint(partitions, topic)
    minute = base - base % 60
    assert minutes(merge(merger, topic.log)) == [(minute, 1, 1, 0)]
    read = len(topic.log)
    add_frames(partitions, 1, [("c", base + 3)], "c")  # it wakes: its own minute opens, and holds the others back
    add_frames(partitions, 1, [("d", base + 100)], "d")  # and closes: a correction
    checkpoint(partitions, topic)
    assert minutes(merge(merger, topic.log[read:])) == [(minute, 2, 2, 1)]


def test_an_idle_partitions_open_window_flushed_late_still_corrects_the_answer():
    """Seen on a cluster (two nodes down, then a drain): one consumer's partition flushed, the
    other's idle with its hour still open. The merger publishes the hour without the idle one
    (left out of the merged time); the flushed one's watermark (its year's end) must not make the
    merger forget the hour before the idle one's part comes: that part corrects the hour."""
    make = maker(lateness=0)
    first, second, topic, merger = (PartitionCounters(make, scaled_out=True), PartitionCounters(make, scaled_out=True),
                                    Topic(), Merger(make().sets, 2))
    hour = base - base % 3600
    add_frames(first, 0, [("a", hour + 5), ("b", hour + 70)], "ab")
    add_frames(second, 1, [("c", hour + 8), ("d", hour + 75)], "cd")
    second.advance_idle(1, hour + 80)  # caught up and idle, its hour open
    checkpoint(second, topic)
    first.flush()  # the drain reaches the first consumer
    checkpoint(first, topic)
    early = [r for r in merge(merger, topic.log) if r.granularity == "hour"]
    assert [(r.users, r.frames) for r in early] == [(2, 2)]  # without partition 1's part
    read = len(topic.log)
    second.flush()  # then the second: its hour's part comes
    checkpoint(second, topic)
    hours = [r for r in merge(merger, topic.log[read:]) if r.granularity == "hour"]
    assert [(r.users, r.frames, r.revision) for r in hours] == [(4, 4, 1)]


def test_a_quiet_topic_publishes_every_window_and_a_partition_that_wakes_corrects_them():
    """Every partition quiet: every window is final at once, the hour and the year too, though
    event time is nowhere near their ends. Frames of the same minute after that are counted, not
    too late (a paused backfill resumes), and the windows they reopen come again as revision 1;
    a window they do not touch does not."""
    make = maker(lateness=0)
    partitions, topic, merger = PartitionCounters(make, scaled_out=True), Topic(), Merger(make().sets, 2)
    hour = base - base % 3600
    add_frames(partitions, 0, [("a", hour + 5), ("b", hour + 70)], "ab")
    add_frames(partitions, 1, [("c", hour + 8)], "c")
    for p in (0, 1):
        partitions.advance_idle(p, hour + 75)
        partitions.close_quiet(p)
    checkpoint(partitions, topic)
    published = {(r.granularity, r.start): (r.users, r.frames, r.revision) for r in merge(merger, topic.log)}
    assert published == {("minute", hour): (2, 2, 0), ("minute", hour + 60): (1, 1, 0),
                         **{(name, calendar_start(name, hour)): (3, 3, 0) for name in GRANULARITIES if name != "minute"}}
    read = len(topic.log)
    emitted = add_frames(partitions, 1, [("d", hour + 80), ("e", hour + 200)], "de")  # it wakes
    assert emitted.dead == []
    partitions.advance_idle(1, hour + 230)
    partitions.close_quiet(1)
    checkpoint(partitions, topic)
    again = {(r.granularity, r.start): (r.users, r.frames, r.revision) for r in merge(merger, topic.log[read:])}
    assert again == {("minute", hour + 60): (2, 2, 1), ("minute", hour + 180): (1, 1, 0),
                     **{(name, calendar_start(name, hour)): (5, 5, 1) for name in GRANULARITIES if name != "minute"}}


def test_keyed_partials_carry_counts_and_sum():
    frames = {0: [("a", base), ("b", base + 1)], 1: [("c", base + 2)]}
    merged, _, _ = merged_run(frames, [5], keyed=True)
    minute = base - base % 60
    assert minutes(merged) == [(minute, 3, 3, 0)]
    topic, partitions = Topic(), PartitionCounters(maker(), scaled_out=True)
    add_frames(partitions, 0, frames[0], "ab")
    partitions.flush()
    checkpoint(partitions, topic, keyed=True)
    parts = [parse(k, v) for k, v in topic.log if k.startswith(b"minute:")]
    assert [(p.value.users, p.value.data) for p in parts] == [(2, None)]


def test_a_large_exact_window_goes_in_parts_of_at_most_part_hashes(monkeypatch):
    monkeypatch.setattr(userset, "PART_HASHES", 1000)
    users = [(f"u{i}", base) for i in range(2500)]
    topic, partitions = Topic(), PartitionCounters(maker(), scaled_out=True)
    add_frames(partitions, 0, users, users)
    partitions.flush()
    checkpoint(partitions, topic)
    minute = base - base % 60
    keys = sorted(k for k, _ in topic.log if k.startswith(f"minute:{minute}:".encode()))
    assert keys == [f"minute:{minute}:0:{n}".encode() for n in range(3)]
    assert max(len(v) for k, v in topic.log if k.startswith((b"minute:", b"hour:"))) < 8 * 1000 + 64
    merger = Merger(maker()().sets, 1)
    for key, value in reversed(topic.log[:-1]):  # any order of the parts; the mark last
        merger.add(parse(key, value))
    merger.add(parse(*topic.log[-1]))
    assert minutes(merger.ready()) == [(minute, 2500, 2500, 0)]


@settings(max_examples=60, deadline=None)
@given(frames=frames_strategy, owners=st.lists(st.integers(0, 2), min_size=1, max_size=8),
       sizes=st.lists(st.integers(1, 20), min_size=1, max_size=6), cut=st.integers(0, 60), crash_after=st.booleans())
def test_a_merger_restored_from_its_entry_and_the_topic_goes_on_as_before(frames, owners, sizes, cut, crash_after):
    """Its entry as of an offset, the topic's latest records (maybe newer than the entry: the
    crash came after the merger's checkpoint, `crash_after`), then reading on from that offset:
    the same latest records, and no revision twice."""
    per_partition = split(frames, owners)
    make = maker(lateness=3, retention=3600)
    partitions, topic = PartitionCounters(make, scaled_out=True), Topic()
    for p in per_partition:
        partitions.assign(p)
    for p, batch in interleaved(per_partition, sizes):
        add_frames(partitions, p, batch, batch)
        checkpoint(partitions, topic)
    partitions.flush()
    checkpoint(partitions, topic)
    whole = Merger(make().sets, len(per_partition))
    expected = merge(whole, topic.log)
    offset = min(cut, len(topic.log))
    first = Merger(make().sets, len(per_partition))
    before = merge(first, topic.log[:offset])
    data = merger_entry(first, offset)
    latest_records = dict(topic.log if crash_after else topic.log[:offset])
    for key in first.take_tombstones():
        latest_records.pop(key, None)
    parts = [p for k, v in latest_records.items() if isinstance(p := parse(k, v), WindowPart)]
    state = merger_state(data)
    assert state.offset == offset
    again = restored_merger(make().sets, len(per_partition), state, parts)
    after = merge(again, topic.log[offset:])
    assert {k: (r.users, r.frames) for k, r in latest(before + after).items()} == \
           {k: (r.users, r.frames) for k, r in latest(expected).items()}
    seen = [(r.granularity, r.start, r.revision) for r in before + after]
    assert len(seen) == len(set(seen))


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
       exact_up_to=st.sampled_from(["minute", "hour", "year"]), part_hashes=st.sampled_from([2, 1 << 16]),
       quiet=st.lists(st.integers(0, 40), max_size=3))
@example(  # a late frame's uid in the open hour, then a restored minute's hashes: its part 0 written anew
    frames=[("user-0", base + 40), ("user-0", base), ("user-1", base + 100)], owners=[0], sizes=[1], stops=(1, 3),
    lateness=0, retention=0, jump=0, exact_up_to="hour", part_hashes=2, quiet=[])
def test_snapshot_restore_and_go_on_is_an_uninterrupted_run(frames, owners, sizes, stops, lateness, retention,
                                                          jump, exact_up_to, part_hashes, quiet):
    """Two crashes: the second restore reads a changelog that the first restore's snapshots went on
    writing (Snapshots.restored), with users split into parts of `part_hashes`; the partition of the
    batch at each of `quiet` goes quiet after it (its windows published early, then reopened)."""
    with patch.object(userset, "PART_HASHES", part_hashes):
        snapshot_restore_and_go_on(frames, owners, sizes, stops, lateness, retention, jump, exact_up_to, quiet)


def snapshot_restore_and_go_on(frames, owners, sizes, stops, lateness, retention, jump, exact_up_to, quiet):
    per_partition = defaultdict(list)
    for i, frame in enumerate(frames):  # the owners drawn, in turn
        per_partition[owners[i % len(owners)]].append(frame)
    batches = []
    for n, (p, batch) in enumerate(interleaved(dict(per_partition), sizes)):
        batches += [(p, batch), (p, None)] if n in quiet else [(p, batch)]
    make = maker(lateness, retention, jump, exact_up_to)
    whole = PartitionCounters(make, scaled_out=True)
    expected, _ = run(whole, batches)
    cuts = sorted(min(stop, len(batches)) for stop in stops)
    logs: dict[int, dict] = defaultdict(dict)
    live, snapshots, done, records = PartitionCounters(make, scaled_out=True), {}, 0, []

    def snapshot():  # incremental, after every batch, each applied as a changelog would keep it
        for p, counter in live.counters.items():
            apply(logs[p], snapshots.setdefault(p, Snapshots(counter)).take())

    for cut in cuts:
        made, _ = run_batches(live, batches[done:cut], snapshot)
        records += made
        live, snapshots, done = PartitionCounters(make, scaled_out=True), {}, cut
        for p, log in logs.items():
            snapshots[p] = Snapshots.restored(restore(live.assign(p), log, make_ref=tuple), log)
    after, _ = run(live, batches[done:])
    assert records + after == expected
    assert reconciliation(live) == reconciliation(whole)


def test_users_are_split_into_parts_that_fit_a_record(monkeypatch):
    monkeypatch.setattr(userset, "PART_HASHES", 1000)
    counter = PartitionCounter(0, 3600, 0, ALL[:2], "hour")
    add_frames(counter, [(f"u{i}", base) for i in range(2500)] + [("next", base + 60)], [None] * 2501)
    entries = Snapshots(counter).full()
    hour = base - base % 3600
    assert sorted(k for k in entries if k.startswith(f"hour/{hour}/")) == [f"hour/{hour}/{n}" for n in range(3)]
    assert max(map(len, entries.values())) < 8 * 1000 + 16
    restored = restore(PartitionCounter(0, 3600, 0, ALL[:2], "hour"), entries)
    assert restored.sets[1].open[hour].counter.count() == 2500


def test_snapshots_are_incremental_and_compact():
    counter = PartitionCounter(0, 3600, 0, ALL[:2], "hour")
    snapshots = Snapshots(counter)
    add_frames(counter, [(f"u{i}", base) for i in range(1000)], [None] * 1000)
    minute = base - base % 60
    open_minute = f"open-minute/{minute}"
    full = snapshots.take()
    assert set(full.changed) == {"clock", open_minute, f"{open_minute}/0"} and full.dropped == []
    assert len(full.changed[f"{open_minute}/0"]) < 8 * 1000 + 16  # 8 bytes a user
    assert snapshots.take() == ({}, [])  # nothing changed
    add_frames(counter, [("u1", base + 1), ("new", base + 2)], [None] * 2)
    grown = snapshots.take()  # the header, and a part with the one new user
    assert set(grown.changed) == {"clock", open_minute, f"{open_minute}/1"}
    assert len(grown.changed[f"{open_minute}/1"]) < 8 + 16
    add_frames(counter, [("late-comer", base + 61)], [None])  # the minute closes into the minute and hour windows
    closed = snapshots.take()
    assert sorted(closed.dropped) == [open_minute, f"{open_minute}/0", f"{open_minute}/1"]
    hour = base - base % 3600
    assert set(closed.changed) == {"clock", f"minute/{minute}", f"minute/{minute}/0", f"hour/{hour}",
                                   f"hour/{hour}/0", f"open-minute/{minute + 60}", f"open-minute/{minute + 60}/0"}


def test_an_entry_of_another_format_version_is_refused():
    counter = PartitionCounter(0, 3600, 0, ALL[:1], "hour")
    add_frames(counter, [("a", base)], [None])
    entries = Snapshots(counter).full()
    entries["clock"] = b"\x92\x09\x00"  # version 9
    with pytest.raises(FormatError, match="version 9"):
        restore(PartitionCounter(0, 3600, 0, ALL[:1], "hour"), entries)
