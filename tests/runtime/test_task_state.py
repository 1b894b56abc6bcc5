"""What a task's checkpoint writes for the state topic and what its restore accepts (count_task.py,
merger_task.py), without a broker: changes are applied as the compacted topic would keep them."""
from __future__ import annotations

from pathlib import Path

import pytest
from kafka import TopicPartition

from tests.core.helpers import add_frames
from uniqcount.core.granularities import parse_granularities
from uniqcount.core.merger import Merger, merger_entry
from uniqcount.core.partials import Mark
from uniqcount.runtime import config
from uniqcount.runtime.count_task import CountTask
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.merger_task import MergerTask
from uniqcount.runtime.outputs import CountedOnly, Records
from uniqcount.runtime.state_log import MERGER, OFFSET, StateMismatch, offset_of

BASE = 1_700_000_000
SETTINGS = config.load(Path("/nonexistent"), {}).replace(
    allowed_lateness=0, outlier_jump=0, granularities=parse_granularities("minute,hour"), exact_up_to="hour")


def task(partition: int = 0) -> CountTask:
    """A restored task of a fresh counting (as after a start or a rewind), nothing checkpointed yet."""
    made = CountTask(TopicPartition("events", partition), Counting(SETTINGS, Records(quiet=True), CountedOnly()),
                     "state", None, False)
    assert made.restore([{}], None) is None
    return made


def add(made: CountTask, *frames: tuple[str, int]) -> None:
    add_frames(made.counting.counters, made.partition, list(frames), [None] * len(frames))


def topic_after(made: CountTask, position: int | None, topic: dict[str, bytes]) -> dict[str, bytes]:
    """The compacted topic's partition: the latest value per key, tombstones removing keys."""
    for change in made.changes(position):
        assert (change.topic, change.partition) == ("state", made.partition)
        if change.value is None:
            topic.pop(change.key.decode(), None)
        else:
            topic[change.key.decode()] = change.value
    return topic


def test_a_checkpoint_writes_the_offset_with_the_state_and_only_what_changed():
    made = task()
    add(made, ("a", BASE), ("b", BASE + 1))
    topic = topic_after(made, 2, {})
    assert offset_of(topic) == 2 and "clock" in topic
    assert made.changes(2) == []  # nothing new
    add(made, ("c", BASE + 120))  # the first minute closes
    changes = made.changes(3)
    assert (OFFSET.encode(), b"\x03") in [(c.key, c.value) for c in changes]
    assert any(c.value is None for c in changes)  # its tombstones


def test_a_restore_builds_the_counter_from_the_state_at_the_committed_offset():
    made = task()
    add(made, ("a", BASE), ("b", BASE + 61))
    topic = topic_after(made, 2, {})
    again = task()
    assert again.restore([topic], committed=2) is None
    assert again.counter is not made.counter
    assert again.counter.max_ts == BASE + 61 and again.counter.kept_windows == 1


def test_a_state_behind_its_offset_is_never_used_and_one_ahead_is_said_and_left_out():
    made = task()
    add(made, ("a", BASE))
    topic = topic_after(made, 1, {})
    with pytest.raises(StateMismatch, match="behind"):  # the commit's markers are still on their way
        task().restore([topic], committed=5)
    fresh = task()
    note = fresh.restore([topic], committed=0)  # offsets reset by hand
    assert "empty state" in note and fresh.counter.max_ts is None
    assert task().restore([{}], committed=None) is None  # nothing checkpointed yet


def test_partition_0_holds_the_mergers_entry_too_which_its_own_restore_leaves_out():
    made = task()
    add(made, ("a", BASE), ("b", BASE + 61))
    topic = topic_after(made, 2, {})
    entry = merger_entry(Merger(made.counting.new_counter().sets, 2), 7)
    again = task()
    assert again.restore([{**topic, MERGER: entry}], committed=2) is None
    assert again.counter.kept_windows == 1
    assert task().restore([{MERGER: entry}], committed=None) is None  # none of its own


def test_the_merger_restores_only_an_entry_that_stands_at_its_committed_offset():
    sets = Counting(SETTINGS, Records(quiet=True), CountedOnly()).new_counter().sets
    merger = Merger(sets, 2)
    merger.add(Mark(0, BASE, False, False))
    state = {MERGER: merger_entry(merger, 7)}

    def merger_task() -> MergerTask:
        return MergerTask(TopicPartition("out-partials", 0), sets, 2, Records(quiet=True), "state")

    with pytest.raises(StateMismatch, match="behind"):
        merger_task().restore([state, {}], committed=9)
    assert "empty state" in merger_task().restore([state, {}], committed=3)
    assert merger_task().restore([{}, {}], committed=None) is None  # nothing checkpointed yet
    restored = merger_task()
    assert restored.restore([state, {}], committed=7) is None and restored.merger.marks == merger.marks
