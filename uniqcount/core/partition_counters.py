"""The partitions one process counts, each with its own counter (partition.py) and clock, so that one
partition's frames never move another's watermark.

- Input of one partition (a file, stdin, a topic with one partition): the partition's records are
  the answer, unchanged: no merge, no extra cost.
- A topic with more partitions (`scaled_out`): whichever consumers count them, the answer is made by
  the merger (merger.py) from every partition's partial results. Here each partition's final and
  corrected windows are gathered (the latest per window) for the runtime to send as partials at its
  next checkpoint, with each partition's mark: watermark, idle, flushed. A partition that the edge
  reports idle (caught up, no frame for IDLE_FLUSH_SECONDS) does not hold the others back; its next
  frame makes it count again.

Pure: no I/O, no clock.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Sequence

from uniqcount.core.partials import Mark, slowest
from uniqcount.core.partition import Emitted, PartitionCounter
from uniqcount.core.windowset import Result


class PartitionCounters:
    def __init__(self, make: Callable[[], PartitionCounter], scaled_out: bool = False):
        """`make` builds the counter of a newly assigned partition (the settings live there);
        `scaled_out`: the input has more partitions than one, and the merger makes the answer."""
        self.make = make
        self.scaled_out = scaled_out
        self.counters: dict[int, PartitionCounter] = {}
        self.idle: set[int] = set()
        self._gathered: dict[int, dict[tuple[str, int], Result]] = {}  # per partition

    def assign(self, partition: int) -> PartitionCounter:
        counter = self.counters.get(partition)
        if counter is None:
            counter = self.counters[partition] = self.make()
        return counter

    def put(self, partition: int, counter: PartitionCounter) -> None:
        """A partition's counter built from its state (a restore): it starts over as not idle."""
        self.counters[partition] = counter
        self.idle.discard(partition)
        self._gathered.pop(partition, None)

    def add_many(self, partition: int, users: Sequence[int], times: Sequence[int], refs: Sequence[Any]) -> Emitted:
        self.idle.discard(partition)
        return self._out(partition, self.assign(partition).add_many(users, times, refs))

    def advance_idle(self, partition: int, watermark: int | None) -> Emitted:
        """The edge saw this partition caught up and idle: its event time moves on to `watermark`
        (None: it never had a frame), and it holds the others back no more."""
        self.idle.add(partition)
        counter = self.assign(partition)
        counter.settle()
        if watermark is None:
            return Emitted([], [])
        return self._out(partition, counter.advance_watermark(watermark))

    def close_quiet(self, partition: int) -> Emitted:
        """The edge saw this partition quiet (caught up and idle): what it holds open is final now."""
        return self._out(partition, self.assign(partition).close_quiet())

    def flush(self) -> Emitted:
        """End of input: every partition decides its held frames and closes everything."""
        results, dead = [], []
        for partition, counter in self.counters.items():
            emitted = self._out(partition, counter.flush())
            results += emitted.results
            dead += emitted.dead
        return Emitted(results, dead)

    def _out(self, partition: int, emitted: Emitted) -> Emitted:
        if not self.scaled_out:
            return emitted
        gathered = self._gathered.setdefault(partition, {})
        for result in emitted.results:
            if result.final:
                gathered[(result.granularity, result.start)] = result
        return Emitted([], emitted.dead)

    def take_partials(self, partition: int) -> list[Result]:
        """The partition's latest final or corrected record of each window changed since the last call."""
        return list(self._gathered.pop(partition, {}).values())

    def mark(self, partition: int) -> Mark:
        counter = self.counters[partition]
        return Mark(partition, counter.watermark, partition in self.idle, counter.flushed)

    def marks(self) -> list[Mark]:
        return [self.mark(p) for p in sorted(self.counters)]

    @property
    def watermark(self) -> int | None:
        """The slowest owned partition's watermark, idle partitions left out (for the status line)."""
        return slowest(self.marks())

    def provisional(self) -> list[Result]:
        """Early records of one partition's open windows (partition.provisional); the merger makes
        final records only."""
        if self.scaled_out or len(self.counters) != 1:
            return []
        (counter,) = self.counters.values()
        return counter.provisional()

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
