"""The two stages of a scale-out in the consumer loop (docs/SCALING.md).

- Every consumer of a topic with several partitions sends, at each checkpoint and inside its
  transaction, the partial results of its partitions (core/partials.py) to `<OUTPUT_TOPIC>-partials`:
  the windows made final or corrected since the last checkpoint, and each partition's mark when it
  moved. Paid per checkpoint, never per frame.
- The consumer that the group gives the partials topic's one partition is the merger: it reads the
  partials (read_committed), publishes the merged records (core/merger.py) in its own transaction,
  with its offsets and its state. So the role fails over as partitions do, and exactly once holds
  across both stages. Its state goes to the state topic's partition 0 under MERGER (reading its own
  writes back would move its offset at every checkpoint), and the parts it needs are the partials
  topic's own latest records, read back on a restore.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

from uniqcount.core.entries import FormatError, fields
from uniqcount.core.merge import Partitions
from uniqcount.core.merger import Merger, merger_entry, restore_merger
from uniqcount.core.partials import Mark, WindowPart, mark_record, parse, window_records
from uniqcount.core.windowset import WindowSet
from uniqcount.runtime.checkpoint import MERGER, usable
from uniqcount.runtime.outputs import Records

MERGER_PARTITION = 0  # of the state topic, under the key MERGER


class PartialsOut:
    """What a checkpoint sends for the merger."""

    def __init__(self, keyed: bool):
        self.keyed = keyed
        self.sent: dict[int, Mark] = {}  # the last mark sent of each partition

    def records(self, partitions: Partitions) -> list[tuple[bytes, bytes]]:
        """Window parts first, then the marks that moved: a mark never overtakes the parts it covers."""
        out = [record for partition, result in partitions.take_partials()
               for record in window_records(partition, result, self.keyed)]
        for mark in partitions.marks():
            if self.sent.get(mark.partition) != mark:
                self.sent[mark.partition] = mark
                out.append(mark_record(mark))
        return out

    def reset(self) -> None:
        """After a rewind: the marks are sent again (the merger keeps the latest)."""
        self.sent.clear()


class MergerRole:
    """The merger of one consumer, from the partition's restore to its loss."""

    def __init__(self, sets: Sequence[WindowSet], partitions: int, records: Records, state_topic: str,
                 partials_topic: str):
        self.merger = Merger(sets, partitions)
        self.records = records
        self.state_topic = state_topic
        self.partials_topic = partials_topic
        self.entry = b""  # the entry last written
        self.unreadable = 0  # partials records this version cannot read (counted, skipped)

    def restore(self, state: dict[str, bytes], partials: dict[str, bytes], committed: int | None) -> str | None:
        """From its entry in the state topic and the partials topic's latest records; None when
        restored (or there is nothing to restore), else why it starts empty."""
        data = state.get(MERGER)
        if data is None:
            return None
        unusable = usable("the merger", fields(data)[0], committed)
        if unusable:
            return unusable
        restore_merger(self.merger, data, [p for p in self._parsed(partials.items()) if isinstance(p, WindowPart)])
        self.entry = data
        return None

    def _parsed(self, records: Iterable[tuple[Any, Any]]) -> Iterable[WindowPart | Mark]:
        for key, value in records:
            if value is None:
                continue  # a tombstone of a forgotten window
            try:
                yield parse(key.encode() if isinstance(key, str) else bytes(key), bytes(value))
            except FormatError:
                self.unreadable += 1

    def process(self, records: list[Any]) -> None:
        """Partials as they come; the records now due go out in the transaction under way."""
        for item in self._parsed((r.key, r.value) for r in records):
            self.merger.add(item)
        self.records.write(self.merger.ready())

    def changes(self, position: int) -> list[tuple[str, int, bytes, bytes | None]]:
        """(topic, partition, key, value or None) to send at a checkpoint: tombstones of the
        partials of forgotten windows, and the merger's entry as of `position` when it changed."""
        out: list[tuple[str, int, bytes, bytes | None]] = [
            (self.partials_topic, 0, key, None) for key in self.merger.take_tombstones()]
        data = merger_entry(self.merger, position)
        if data != self.entry:
            self.entry = data
            out.append((self.state_topic, MERGER_PARTITION, MERGER.encode(), data))
        return out

    @property
    def status(self) -> str:
        merger = self.merger
        ignored = f", {merger.ignored:,} parts ignored" if merger.ignored else ""
        unreadable = f", {self.unreadable:,} unreadable" if self.unreadable else ""
        return f", merging {len(merger.windows):,} windows ({len(merger.waiting):,} waiting){ignored}{unreadable}"
