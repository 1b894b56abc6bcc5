"""What a checkpoint writes for the state topic and what a restore accepts (runtime/checkpoint.py),
without a broker: entries are applied as the compacted topic would keep them."""
from __future__ import annotations

import pytest

from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.merge import Partitions
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.merger import Merger, merger_entry
from uniqcount.core.partials import Mark
from uniqcount.runtime.checkpoint import MERGER, OFFSET, StateLog, StateMismatch, offset_of
from uniqcount.runtime.merging import MergerRole
from uniqcount.runtime.outputs import Records

BASE = 1_700_000_000


def partitions() -> Partitions:
    return Partitions(lambda: PartitionCounter(0, 3600, 0, [GRANULARITIES["minute"], GRANULARITIES["hour"]], "hour"))


def topic_after(log: StateLog, positions: dict[int, int], topic: dict[int, dict]) -> dict[int, dict]:
    """The compacted topic: the latest value per key of each partition, tombstones removing keys."""
    for partition, key, value in log.changes(positions):
        entries = topic.setdefault(partition, {})
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value
    return topic


def test_a_checkpoint_writes_the_offset_with_the_state_and_only_what_changed():
    merged = partitions()
    log = StateLog(lambda: merged)
    merged.add_many(0, [("a", BASE), ("b", BASE + 1)], [None, None])
    topic = topic_after(log, {0: 2}, {})
    assert offset_of(topic[0]) == 2 and "clock" in topic[0]
    assert list(log.changes({0: 2})) == []  # nothing new
    merged.add_many(0, [("c", BASE + 120)], [None])  # the first minute closes
    changes = list(log.changes({0: 3}))
    assert (0, OFFSET, b"\x03") in changes and any(value is None for _, _, value in changes)  # its tombstones


def test_a_restore_takes_the_state_that_stands_at_the_committed_offset():
    merged = partitions()
    log = StateLog(lambda: merged)
    merged.add_many(0, [("a", BASE), ("b", BASE + 61)], [None, None])
    topic = topic_after(log, {0: 2}, {})
    again = partitions()
    assert StateLog(lambda: again).restore(0, topic[0], committed=2) is None
    assert again.counters[0].max_ts == BASE + 61 and again.counters[0].kept_windows == 1


def test_a_state_behind_its_offset_is_never_used_and_one_ahead_is_said_and_left_out():
    merged = partitions()
    log = StateLog(lambda: merged)
    merged.add_many(0, [("a", BASE)], [None])
    topic = topic_after(log, {0: 1}, {})
    with pytest.raises(StateMismatch, match="behind"):  # the commit's markers are still on their way
        StateLog(lambda: partitions()).restore(0, topic[0], committed=5)
    fresh = partitions()
    note = StateLog(lambda: fresh).restore(0, topic[0], committed=0)  # offsets reset by hand
    assert "empty state" in note and fresh.counters[0].max_ts is None
    assert StateLog(lambda: partitions()).restore(0, {}, committed=None) is None  # nothing checkpointed yet


def test_partition_0_holds_the_mergers_entry_too_which_its_own_restore_leaves_out():
    merged = partitions()
    log = StateLog(lambda: merged)
    merged.add_many(0, [("a", BASE), ("b", BASE + 61)], [None, None])
    topic = topic_after(log, {0: 2}, {})
    entry = merger_entry(Merger(merged.make().sets, 2), 7)
    again = partitions()
    assert StateLog(lambda: again).restore(0, {**topic[0], MERGER: entry}, committed=2) is None
    assert again.counters[0].kept_windows == 1
    assert StateLog(lambda: partitions()).restore(0, {MERGER: entry}, committed=None) is None  # none of its own


def test_the_merger_restores_only_an_entry_that_stands_at_its_committed_offset():
    sets = partitions().make().sets
    merger = Merger(sets, 2)
    merger.add(Mark(0, BASE, False, False))
    state = {MERGER: merger_entry(merger, 7)}

    def role():
        return MergerRole(sets, 2, Records(quiet=True), "state", "partials")

    with pytest.raises(StateMismatch, match="behind"):
        role().restore(state, {}, committed=9)
    assert "empty state" in role().restore(state, {}, committed=3)
    assert role().restore({}, {}, committed=None) is None  # nothing checkpointed yet
    restored = role()
    assert restored.restore(state, {}, committed=7) is None and restored.merger.marks == merger.marks
