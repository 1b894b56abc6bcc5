"""One answer from several partitions: each input partition has its own counter (partition.py) and
clock; a process publishes one record per window for all the partitions it owns.

- A window is final once every owned partition's watermark has passed its end. A partition that the
  edge reports idle (caught up, no frame for IDLE_FLUSH_SECONDS) does not hold the others back, the
  rule Flink calls idleness; its next frame makes it count again.
- Its users are the union of the partitions' users: exact windows by their uids (or 64-bit hashes),
  HLL windows by the union of their sketches. Before it is final, a window's records are provisional.
- A partition that takes late frames into a window already final makes a correction (revision + 1),
  as one partition does. Partitions keep their closed windows until every partition is past
  retention for them (`forget_cap`), so the union can always be made.

With one partition the records are the partition's own, unchanged: no union, no extra cost.
Pure: no I/O, no clock.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

from uniqcount.core.partition import Emitted, PartitionCounter
from uniqcount.core.windowset import FAR, Result, WindowSet, provisional

Key = tuple[int, int]  # (index of the granularity, window start)


class Partitions:
    def __init__(self, make: Callable[[], PartitionCounter]):
        """`make` builds the counter of a newly assigned partition (the settings live there)."""
        self.make = make
        self.counters: dict[int, PartitionCounter] = {}
        self.idle: set[int] = set()
        self.scope: tuple[int, ...] | None = None  # partial: only these partitions of a topic with more
        self.revisions: dict[Key, int] = {}  # revision of each window's last final record
        self.waiting: dict[Key, int] = {}  # windows some partition has made records of, not final yet: their end
        self._forget_at = FAR  # the earliest end among the windows in `revisions` (FAR: to be found)

    def assign(self, partition: int) -> PartitionCounter:
        counter = self.counters.get(partition)
        if counter is None:
            counter = self.counters[partition] = self.make()
        return counter

    def add_many(self, partition: int, frames: Sequence[tuple[str, int]], refs: Sequence[Any]) -> Emitted:
        self.idle.discard(partition)
        counter = self.assign(partition)
        self._cap()
        return self._merged(counter.add_many(frames, refs))

    def advance_idle(self, partition: int, watermark: int | None) -> Emitted:
        """The edge saw this partition caught up and idle: its event time moves on to `watermark`
        (None: it never had a frame), and it holds the others back no more."""
        self.idle.add(partition)
        counter = self.assign(partition)
        self._cap()
        counter.settle()
        if watermark is None:
            return self._merged(Emitted([], []))
        return self._merged(counter.advance_watermark(watermark))

    def flush(self) -> Emitted:
        """End of input: every partition decides its held frames and closes everything."""
        results, dead = [], []
        self._cap()
        for counter in self.counters.values():
            emitted = counter.flush()
            results += emitted.results
            dead += emitted.dead
        return self._merged(Emitted(results, dead), flushing=True)

    @property
    def watermark(self) -> int | None:
        """The merged event time: the slowest partition's watermark, idle partitions left out."""
        marks = [c.watermark for p, c in self.counters.items() if p not in self.idle] or \
                [c.watermark for c in self.counters.values() if c.watermark is not None]
        return None if not marks or None in marks else min(marks)

    @property
    def _single(self) -> bool:
        """One partition, the whole topic: its records are the answer."""
        return len(self.counters) == 1 and self.scope is None and not self.waiting

    def _cap(self) -> None:
        """Partitions keep their closed windows until the merged watermark is past retention for
        them, so that a merged record can always be made (-FAR: the merge has no watermark yet)."""
        cap = None if self._single else self.watermark if self.watermark is not None else -FAR
        for counter in self.counters.values():
            counter.forget_cap = cap

    def _merged(self, emitted: Emitted, flushing: bool = False) -> Emitted:
        if self._single:
            (counter,) = self.counters.values()
            for result in emitted.results:  # the partition's records are the answer
                if result.final:
                    self.revisions[self._key(result)] = result.revision
                    self._forget_at = min(self._forget_at, result.end)
            self._forget(counter.forget_until)
            return emitted
        return Emitted(self._union_records(emitted.results, flushing), emitted.dead)

    def _sets(self) -> list[WindowSet]:
        """The granularities, the same in every partition."""
        return next(iter(self.counters.values())).sets

    def _key(self, result: Result) -> Key:
        return next(i for i, s in enumerate(self._sets()) if s.name == result.granularity), result.start

    def _union_records(self, changed: list[Result], flushing: bool) -> list[Result]:
        """One record per window that changed in any partition, or that the merged watermark passed."""
        watermark = FAR if flushing else self.watermark
        for result in changed:
            self.waiting.setdefault(self._key(result), result.end)
        ready = [key for key, end in self.waiting.items() if watermark is not None and end <= watermark]
        keys = dict.fromkeys([*(self._key(r) for r in changed), *ready])
        results = [r for key in sorted(keys, key=lambda k: (k[0], self.waiting[k], k[1]))
                   if (r := self._merged_record(key, watermark)) is not None]
        if watermark is not None and watermark < FAR:
            self._forget(watermark - self._sets()[0].late_retention)
        return results

    def _merged_record(self, key: Key, watermark: int | None) -> Result | None:
        index, start = key
        found = [w for c in self.counters.values() if (w := c.sets[index].get(start)) is not None]
        end = self.waiting[key]
        final = watermark is not None and end <= watermark
        if final:
            del self.waiting[key]
        if not found:
            return None
        revision = 0
        if final:
            revision = self.revisions[key] = self.revisions.get(key, -1) + 1
            self._forget_at = min(self._forget_at, end)
        return self._sets()[index].union_result(start, found, final=final, revision=revision, partitions=self.scope)

    def _forget(self, forget_until: int | None) -> None:
        """Revisions of windows that every partition has forgotten: no record of them can come."""
        if forget_until is None or not self.revisions or forget_until < self._forget_at < FAR:
            return
        sets = self._sets()
        ends = {key: sets[key[0]].granularity.end(key[1]) for key in self.revisions}
        for key in [k for k, end in ends.items() if end <= forget_until]:
            del self.revisions[key]
            del ends[key]
        self._forget_at = min(ends.values(), default=FAR)

    def provisional(self) -> list[Result]:
        """Early records over every partition's open minutes, as partition.provisional does for one."""
        counters = list(self.counters.values())
        minutes = [c.open_minutes() for c in counters]
        if not counters or not any(grew for ms in minutes for *_, grew in ms):
            return []
        return [r for i in range(len(counters[0].sets))
                for r in provisional([(c.sets[i], ms) for c, ms in zip(counters, minutes)], self.scope)]

    # the reconciliation, summed over partitions
    def total(self, name: str) -> int:
        return sum(getattr(c, name) for c in self.counters.values())

    @property
    def rejected(self) -> Counter[str]:
        return sum((c.rejected for c in self.counters.values()), Counter())

    def too_late(self) -> dict[str, int]:
        """Frames too late per granularity (maybe counted by a longer one)."""
        totals: Counter[str] = Counter()
        for counter in self.counters.values():
            for windows in counter.sets:
                totals[windows.name] += windows.too_late
        return {name: n for name, n in totals.items() if n}
