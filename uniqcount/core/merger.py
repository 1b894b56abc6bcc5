"""The merger: one answer per window from the partial results of every input partition (partials.py),
whichever consumers counted them. The second stage of a scale-out; see docs/SCALING.md.

- It keeps each partition's latest part of each window (a higher revision replaces a lower one;
  the same one again, from a replay or a checkpoint redone, changes nothing) and each partition's
  latest mark.
- A window is final once every input partition's watermark has passed its end: idle partitions are
  left out (as a counter's own clock does with Flink's idleness), a flushed one holds nothing back,
  and a partition never heard of holds everything back. Its users are the union of the parts'
  (hashes or sketches), or the sum of their counts when the input is keyed by uid.
- A part that arrives for a window already published makes a correction (revision + 1), as a late
  frame does in one partition. A window is forgotten once every partition is past retention for
  it; its partials then get tombstones, and a part that still comes for it is ignored (counted).

Its state (`snapshot`) is small: marks, revisions, which revision of each part it has taken, and
the windows waiting to be final. The parts themselves are the partials topic's own latest records,
read back on a restore (`restore`). Pure: no I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Sequence, cast

from uniqcount.core.counters import FrozenExactCounter, HllCounter, UserCounter, union_counter, union_of
from uniqcount.core.entries import MergerEntry, decode, encode
from uniqcount.core.partials import Mark, WindowPart, slowest, window_keys
from uniqcount.core.windowset import FAR, Result, WindowSet

Key = tuple[int, int]  # (index of the granularity, window start)


@dataclass(slots=True)
class Part:
    """One partition's latest part of one window."""
    revision: int
    parts: int
    frames: int
    late_frames: int
    users: int
    counter: UserCounter | None  # None: the count only (keyed input)


class Merger:
    def __init__(self, sets: Sequence[WindowSet], partitions: int, stored: Collection[str] = ()):
        """`sets`: the granularities, as a counter built with the same settings has them;
        `partitions`: how many the input topic has; `stored`: the granularities whose records carry
        their users' union (for the stored sketches, sketches.py)."""
        self.sets = list(sets)
        self.stored = stored
        self.index = {windows.name: i for i, windows in enumerate(self.sets)}
        self.partitions = partitions
        self.late_retention = self.sets[0].late_retention
        self.windows: dict[Key, dict[int, Part]] = {}
        self.marks: dict[int, Mark] = {}
        self.revisions: dict[Key, int] = {}  # of each window's last record
        self.waiting: set[Key] = set()  # windows with parts not published yet
        self.forgotten_until = -FAR  # windows ending by then are gone
        self.ignored = 0  # parts of windows already forgotten, or of granularities not counted here
        self.tombstones: list[bytes] = []  # keys of the partials of forgotten windows, for the runtime
        self._assembling: dict[tuple[Key, int, int], dict[int, bytes | None]] = {}

    def add(self, item: WindowPart | Mark) -> None:
        if isinstance(item, Mark):
            self.marks[item.partition] = item
            return
        index = self.index.get(item.granularity)
        if index is None or self._end((index, item.start)) <= self.forgotten_until:
            self.ignored += 1
            return
        key = (index, item.start)
        known = self.windows.get(key, {}).get(item.partition)
        if known is not None and item.value.revision <= known.revision:
            return
        data = self._assembled(key, item)
        if data is None:
            return
        value = item.value
        self.windows.setdefault(key, {})[item.partition] = Part(
            value.revision, value.parts, value.frames, value.late_frames, value.users, self._counter(index, data))
        self.waiting.add(key)

    def _assembled(self, key: Key, item: WindowPart) -> list[bytes | None] | None:
        """The parts of one revision, once all are in (they come one after the other)."""
        value = item.value
        if value.parts == 1:
            return [value.data]
        got = self._assembling.setdefault((key, item.partition, value.revision), {})
        got[item.part] = value.data
        if len(got) < value.parts:
            return None
        del self._assembling[(key, item.partition, value.revision)]
        return [got[n] for n in range(value.parts)]

    def _counter(self, index: int, data: list[bytes | None]) -> UserCounter | None:
        if data == [None]:  # keyed input: the count only
            return None
        parts = cast("list[bytes]", data)
        if not self.sets[index].exact:
            return HllCounter.from_bytes(parts[0])
        return FrozenExactCounter.from_bytes(b"".join(parts))

    def watermark(self) -> int | None:
        """The merged event time: the slowest partition's, idle ones left out (all idle: all), a
        flushed one at FAR. None while a partition is unheard of."""
        marks = [self.marks[p] for p in range(self.partitions) if p in self.marks]
        return None if len(marks) < self.partitions else slowest(marks, flushed_far=True)

    @property
    def flushed(self) -> bool:
        """Every partition's input was flushed (a drain): nothing more will come."""
        return len(self.marks) >= self.partitions and all(m.flushed for m in self.marks.values())

    def ready(self) -> list[Result]:
        """The records due: each waiting window that is final, oldest end first per granularity;
        then the windows past retention are forgotten."""
        watermark = self.watermark()
        if watermark is None:
            return []
        due = [key for key in self.waiting if self._end(key) <= watermark]
        results = []
        for key in sorted(due, key=lambda k: (k[0], self._end(k), k[1])):
            self.waiting.discard(key)
            revision = self.revisions[key] = self.revisions.get(key, -1) + 1
            results.append(self._result(key, revision))
        self._forget()
        return results

    def _end(self, key: Key) -> int:
        return self.sets[key[0]].granularity.end(key[1])

    def _result(self, key: Key, revision: int) -> Result:
        index, start = key
        windows = self.sets[index]
        parts = list(self.windows[key].values())
        counters = [part.counter for part in parts if part.counter is not None]
        union = union_counter(counters) if windows.name in self.stored and counters and len(counters) == len(parts) else None
        if union is not None:
            users, bounds = union.count(), union.bounds()
        else:
            users, bounds = union_of(counters) if counters else (sum(part.users for part in parts), None)
        return Result(windows.name, start, self._end(key), users, sum(part.frames for part in parts), True,
                      revision, sum(part.late_frames for part in parts), "exact" if windows.exact else "hll", bounds,
                      union)

    def _forget(self) -> None:
        """Every partition, idle ones too, at its own watermark (flushed or not), is past retention
        for them: an idle partition is left out of the merged time, yet it may still send the parts
        of its open windows (a drain flushes them), which must correct what was published."""
        marks = [self.marks.get(p) for p in range(self.partitions)]
        times = [m.watermark for m in marks if m is not None]
        if len(times) < self.partitions or None in times:
            return
        watermark = min(t for t in times if t is not None)
        if watermark - self.late_retention <= self.forgotten_until:
            return
        self.forgotten_until = until = watermark - self.late_retention
        for key in [k for k in self.windows if self._end(k) <= until and k not in self.waiting]:
            name = self.sets[key[0]].name
            for partition, part in self.windows.pop(key).items():
                self.tombstones += window_keys(name, key[1], partition, part.parts)
            self.revisions.pop(key, None)

    def take_tombstones(self) -> list[bytes]:
        tombstones, self.tombstones = self.tombstones, []
        return tombstones


def merger_entry(merger: Merger, offset: int) -> bytes:
    """The merger's state as of `offset` of the partials topic (what it has read up to)."""
    taken = [(*key, partition, part.revision) for key, parts in merger.windows.items()
             for partition, part in parts.items()]
    marks = [(m.partition, m.watermark, m.idle, m.flushed) for m in merger.marks.values()]
    return encode(MergerEntry(offset, taken, sorted(merger.revisions.items()), marks, sorted(merger.waiting),
                              merger.forgotten_until))


def merger_state(data: bytes) -> MergerEntry:
    """The merger's entry, read (FormatError if it is none)."""
    return decode(data, MergerEntry)


def restored_merger(sets: Sequence[WindowSet], partitions: int, state: MergerEntry,
                    parts: Iterable[WindowPart], stored: Collection[str] = ()) -> Merger:
    """A merger built from its entry and the window parts the partials topic holds (its latest
    records): a part newer than the one the entry says was taken waits to be published, as if it
    came now."""
    merger = Merger(sets, partitions, stored)
    merger.revisions = dict(state.revisions)
    merger.forgotten_until = state.forgotten_until
    for part in parts:
        merger.add(part)
    merger.marks = {mark[0]: Mark(*mark) for mark in state.marks}
    had = {(index, start, partition): revision for index, start, partition, revision in state.taken}
    merger.waiting = set(state.waiting) | {
        key for key, by_partition in merger.windows.items() for partition, part in by_partition.items()
        if part.revision > had.get((*key, partition), -1)}
    return merger
