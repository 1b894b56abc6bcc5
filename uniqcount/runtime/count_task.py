"""The task of one input partition: its counter (one of the counting's PartitionCounters), its
entries in the state topic's partition of the same number, and, of a topic of several partitions,
its partial results for the merger (merger_task.py), sent at each checkpoint inside its transaction.
Paid per checkpoint, never per frame."""
from __future__ import annotations

import time
from itertools import groupby
from typing import Any, Iterable, Sequence

import msgspec

from uniqcount.core.partials import Mark, mark_record, window_records
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.state import Snapshots, restore
from uniqcount.kafka_client.fetch import BatchAhead
from uniqcount.kafka_client.record_batches import Record
from uniqcount.runtime import published as kept
from uniqcount.runtime.committer import Change
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.published import Published
from uniqcount.runtime.state_log import MERGER, OFFSET, Entries, offset_of, usable


class CountTask:
    def __init__(self, tp: Any, counting: Counting, state_topic: str, partials_topic: str | None, keyed: bool,
                 published: Published | None = None):
        """`partials_topic`: where its partial results go (None: one partition, its records are the
        answer, and `published` keeps its stored and rolling windows); `keyed`: the input is keyed by
        uid, so partials carry counts (not of the granularities whose users the merger unites)."""
        self.tp = tp
        self.partition = tp.partition
        self.counting = counting
        self.state_topic = state_topic
        self.partials_topic = partials_topic
        self.keyed = keyed
        self.published = published
        self.with_users = kept.with_users(counting.settings)
        self.sources: tuple[tuple[str, int], ...] = ((state_topic, self.partition),)
        self.position: int | None = None  # past the last record processed since the restore
        self.snapshots: Snapshots | None = None
        self.offset: int | None = None  # the input offset its state was last written at
        self.mark: Mark | None = None  # the last mark sent to the merger
        self.last_frame: float | None = None  # time.monotonic() of the last frame since the restore
        self.watermark_at_last_frame: int | None = None  # where idleness moves its event time on from
        self.frame_watermark_known = False

    def restore(self, entries: Sequence[Entries], committed: int | None) -> str | None:
        """Its counter built from its entries, or a fresh one: None, or why the state is left out
        (it stands at another offset than the committed one)."""
        (stored,) = entries
        counter = self.counting.new_counter()
        self.counting.counters.put(self.partition, counter)
        self.snapshots = self.offset = None
        stands_at = offset_of(stored)
        if self.published is not None:
            self.published.restore(stored)
        state = {key: value for key, value in stored.items() if key not in (OFFSET, MERGER, *kept.KEYS)}
        if stands_at is None and (not state or committed is None):  # nothing read yet: nothing to restore
            return None
        unusable = usable(f"partition {self.partition}", stands_at, committed)
        if unusable:
            return unusable
        restore(counter, state, make_ref=lambda ref: Record(*ref))
        self.snapshots = Snapshots.restored(counter, state)
        self.offset = stands_at
        return None

    def process(self, records: list[Any]) -> None:
        """A poll's records of its partition: BatchAheads (a batch each, native/ built), or Records
        (an old-format batch among BatchAheads comes as Records: each run by its own path)."""
        for kind, run in groupby(records, key=type):
            if kind is BatchAhead:
                for batch in run:
                    self.counting.process_columns(batch.columns(), self.partition)
            else:
                found: list[Any] = list(run) if kind is Record else [  # kafka-python's own (deserializers): not in the core
                    Record(r.topic, r.partition, r.offset, r.key, r.value) for r in run]
                self.counting.process([r.value or b"" for r in found], found, self.partition)  # None: a tombstone
        self.last_frame = time.monotonic()
        self.watermark_at_last_frame, self.frame_watermark_known = self.counter.watermark, True

    @property
    def counter(self) -> PartitionCounter:
        return self.counting.counters.counters[self.partition]

    def changes(self, position: int | None) -> list[Change]:
        """Partial results (window parts first, then the mark if it moved: a mark never overtakes
        the parts it covers), then the state entries changed since the last checkpoint, and the
        offset they stand at."""
        out = list(self._partials()) if self.partials_topic is not None else []
        if self.published is not None:
            out += self.published.changes()
        if self.snapshots is None:
            self.snapshots = Snapshots(self.counter)
        changed, dropped = self.snapshots.take()
        out += [Change(self.state_topic, self.partition, key.encode(), value) for key, value in changed.items()]
        out += [Change(self.state_topic, self.partition, key.encode(), None) for key in dropped]
        if position is not None and position != self.offset:
            self.offset = position
            out.append(Change(self.state_topic, self.partition, OFFSET.encode(), msgspec.msgpack.encode(position)))
        return out

    def _partials(self) -> Iterable[Change]:
        assert self.partials_topic is not None
        counters = self.counting.counters
        for result in counters.take_partials(self.partition):
            for key, value in window_records(self.partition, result, self.keyed and result.granularity not in self.with_users):
                yield Change(self.partials_topic, 0, key, value)
        mark = counters.mark(self.partition)
        if mark != self.mark:
            self.mark = mark
            key, value = mark_record(mark)
            yield Change(self.partials_topic, 0, key, value)

    @staticmethod
    def restored_line(tasks: list[CountTask], entries: list[Sequence[Entries]]) -> str:
        windows = sum(t.counter.open_windows + t.counter.kept_windows for t in tasks)
        size = sum(len(v) for e in entries for part in e for v in part.values())
        return (f"restored partition(s) {', '.join(str(t.partition) for t in tasks)} from {tasks[0].state_topic}: "
                f"{windows:,} windows, {size / 1e6:.1f} MB")
