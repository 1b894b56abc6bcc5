"""The merger as a task: the one consumer that the group gives the partials topic's one partition
reads every input partition's partial results (read_committed) and publishes the merged records
(core/merger.py) in its own transaction, with its offsets and its state (docs/SCALING.md). So the
role fails over as partitions do, and exactly once holds across both stages.

Its state goes to the state topic's partition 0 under MERGER (reading its own writes back would move
its offset at every checkpoint); the parts it needs are the partials topic's own latest records,
read back on a restore.
"""
from __future__ import annotations

from typing import Any, Collection, Iterable, Sequence

from uniqcount.core.entries import FormatError
from uniqcount.core.merger import Merger, merger_entry, merger_state, restored_merger
from uniqcount.core.partials import Mark, WindowPart, parse
from uniqcount.core.windowset import WindowSet
from uniqcount.runtime.committer import Change
from uniqcount.runtime.outputs import Records
from uniqcount.runtime.published import Published
from uniqcount.runtime.state_log import MERGER, Entries, usable

MERGER_PARTITION = 0  # of the state topic, under the key MERGER


class MergerTask:
    def __init__(self, tp: Any, sets: Sequence[WindowSet], partitions: int, records: Records, state_topic: str,
                 published: Published | None = None, with_users: Collection[str] = ()):
        """`tp`: the partials topic's partition; `sets`: the granularities, as a counter has them;
        `partitions`: how many the input topic has; `published`: what is kept beside the records;
        `with_users`: the granularities whose results carry their users (published.with_users)."""
        self.tp = tp
        self.sets = sets
        self.partitions = partitions
        self.records = records
        self.state_topic = state_topic
        self.published = published
        self.stored = with_users
        self.sources: tuple[tuple[str, int], ...] = ((state_topic, MERGER_PARTITION), (tp.topic, tp.partition))
        self.position: int | None = None
        self.merger = Merger(sets, partitions, self.stored)
        self.entry = b""  # the entry last written
        self.unreadable = 0  # partials records this version cannot read (counted, skipped)

    def restore(self, entries: Sequence[Entries], committed: int | None) -> str | None:
        """A merger built from its entry in the state topic and the partials topic's latest
        records; None when restored (or there is nothing to restore), else why it starts empty."""
        state, parts = entries
        self.merger, self.entry = Merger(self.sets, self.partitions, self.stored), b""
        if self.published is not None:
            self.published.restore(state)
        data = state.get(MERGER)
        if data is None:
            return None
        merger = merger_state(data)
        unusable = usable("the merger", merger.offset, committed)
        if unusable:
            return unusable
        self.merger = restored_merger(self.sets, self.partitions, merger,
                                      [p for p in self._parsed(parts.items()) if isinstance(p, WindowPart)],
                                      self.stored)
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

    def changes(self, position: int | None) -> list[Change]:
        """Tombstones of the partials of forgotten windows, and the merger's entry as of `position`
        when it changed (nothing before it has read anything since its restore)."""
        if position is None:
            return []
        out = [Change(self.tp.topic, self.tp.partition, key, None) for key in self.merger.take_tombstones()]
        if self.published is not None:
            out += self.published.changes()
        data = merger_entry(self.merger, position)
        if data != self.entry:
            self.entry = data
            out.append(Change(self.state_topic, MERGER_PARTITION, MERGER.encode(), data))
        return out

    @property
    def merging(self) -> bool:
        """Not every partition's flushed input is in, or some windows wait to be published."""
        return not self.merger.flushed or bool(self.merger.waiting)

    @staticmethod
    def restored_line(tasks: list[MergerTask], entries: list[Sequence[Entries]]) -> str:
        (task,), ((_, parts),) = tasks, entries
        return (f"merger of {task.partitions} partitions: restored {len(task.merger.windows):,} windows "
                f"({sum(map(len, parts.values())) / 1e6:.1f} MB of partials)")

    @property
    def status(self) -> str:
        merger = self.merger
        ignored = f", {merger.ignored:,} parts ignored" if merger.ignored else ""
        unreadable = f", {self.unreadable:,} unreadable" if self.unreadable else ""
        return f", merging {len(merger.windows):,} windows ({len(merger.waiting):,} waiting){ignored}{unreadable}"
