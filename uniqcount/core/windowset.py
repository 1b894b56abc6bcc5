"""The windows of one granularity (minute, hour, ... year): open ones growing, closed ones kept for
late frames until retention, and the records they make. Pure: partition.py decides what each frame
is (on time, late, held) and calls in here.

On-time frames arrive a closed minute at a time (`add_minute`): every granularity, the minute one
included, is fed the same way, so one parse and one minute set serve them all. A frame that comes
after its minute closed is offered to each granularity on its own (`add_late`): it may still fall in
an open hour or day, correct a kept window, or be too late for this granularity but not for a longer one.

A quiet partition publishes its open windows before the watermark reaches them (`close_open`): they
are kept, and what still comes for one reopens it, so that its next final record is a revision.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence, cast

from uniqcount.core.counters import (
    DEFAULT_LG_K,
    ExactCounter,
    FrozenExactCounter,
    HllCounter,
    NewUsers,
    UserCounter,
    union_of,
)
from uniqcount.core.granularities import Granularity

FAR = 1 << 62  # later than any event time


@dataclass(slots=True)
class Result:
    """What one output record says about a window."""
    granularity: str
    start: int
    end: int
    users: int
    frames: int
    final: bool
    revision: int
    late_frames: int
    estimate: str = "exact"
    bounds: tuple[int, int] | None = None  # HLL: the sketch's 95% bounds
    counter: UserCounter | None = field(default=None, compare=False, repr=False)  # its users, for the merger (partials.py)


@dataclass(slots=True)
class Window:
    start: int
    end: int
    counter: UserCounter  # open: ExactCounter or HllCounter; kept: frozen
    frames: int = 0
    revision: int = -1  # of the last final record; -1: none yet (e.g. a window made only of late frames)
    late_frames: int = 0


class Late(Enum):
    COUNTED = "counted"
    TOO_LATE = "too_late"


class WindowSet:
    def __init__(self, granularity: Granularity, exact: bool, late_retention: int, lg_k: int = DEFAULT_LG_K):
        self.granularity = granularity
        self.name = granularity.name
        self.exact = exact
        self.lg_k = lg_k
        self.late_retention = late_retention
        self.open: dict[int, Window] = {}
        self.kept: dict[int, Window] = {}
        self.next_end = FAR  # end of the oldest open window
        self.too_late = 0  # frames too late for this granularity (maybe counted by a longer one)
        self.corrections = 0
        self._grown: set[int] = set()  # open windows grown since their last record
        self._dirty: set[int] = set()  # kept windows changed by late frames since their last record
        self._span = (0, 0)  # the last window looked up: most lookups fall in it

    def span(self, ts: int) -> tuple[int, int]:
        start, end = self._span
        if not start <= ts < end:
            start = self.granularity.start(ts)
            self._span = start, end = start, self.granularity.end(start)
        return start, end

    def _counter(self) -> ExactCounter | HllCounter:
        return ExactCounter() if self.exact else HllCounter(self.lg_k)

    def _open(self, start: int, end: int) -> Window:
        window = self.open[start] = Window(start, end, self._counter())
        self.next_end = min(self.next_end, end)
        return window

    def add_minute(self, minute_start: int, users: NewUsers, frames: int) -> None:
        """A minute closed: its users join the window holding it, which is still open (it ends no
        earlier than the minute, and minutes are fed before windows close)."""
        start, end = self.span(minute_start)
        window = self.open.get(start)
        if window is None:
            window = self._reopened(start) or self._open(start, end)
        counter = window.counter
        assert not isinstance(counter, FrozenExactCounter), "an open window's users are never frozen"
        counter.add_users(users)
        window.frames += frames
        self._grown.add(start)

    def add_late(self, user: int, ts: int, watermark: int) -> Late:
        """A frame whose minute already closed."""
        start, end = self.span(ts)
        if end + self.late_retention <= watermark:
            self.too_late += 1
            return Late.TOO_LATE
        window = self.open.get(start)
        if window is None and end > watermark:
            window = self._reopened(start) or self._open(start, end)
        if window is not None:
            window.counter.add(user)
            window.frames += 1
            self._grown.add(start)
            return Late.COUNTED
        kept = self.kept.get(start)
        if kept is None:
            kept = self.kept[start] = Window(start, end, self._counter().frozen())
        kept.counter.add(user)
        kept.frames += 1
        kept.late_frames += 1
        self._dirty.add(start)
        return Late.COUNTED

    def _reopened(self, start: int) -> Window | None:
        """A window published early (`close_open`) that takes users again: open once more."""
        window = self.kept.pop(start, None)
        if window is not None:
            if isinstance(window.counter, FrozenExactCounter):
                window.counter = ExactCounter(set(window.counter.hashes()))
            self.open[start] = window
            self.next_end = min(self.next_end, window.end)
        return window

    def close_until(self, watermark: int) -> list[Result]:
        """Final records of the windows ending by the watermark, oldest first; kept for late frames."""
        if watermark < self.next_end:
            return []
        return self._close(sorted(s for s, w in self.open.items() if w.end <= watermark), self.late_retention > 0)

    def close_open(self) -> list[Result]:
        """Final records of every open window, the watermark where it is (its partition went quiet):
        kept whatever the retention, so that what still comes reopens them (`_reopened`)."""
        return self._close(sorted(self.open), keep=True)

    def _close(self, starts: list[int], keep: bool) -> list[Result]:
        results = []
        for start in starts:
            window = self.open.pop(start)
            self._grown.discard(start)
            window.revision += 1  # 0, or the next revision of a window published early
            if keep:  # frozen first: the record's counter, for a partial, is its hashes
                window.counter = window.counter.frozen()
                self.kept[start] = window
            results.append(self._result(window, final=True))
        self.next_end = min((w.end for w in self.open.values()), default=FAR)
        return results

    def end_batch(self, forget_until: int | None) -> list[Result]:
        """One record per window changed in this batch: a correction of each kept window that took late
        frames, a provisional record of each open one that grew. Then forget the kept windows ending by
        `forget_until` (past retention here and, for a merge of partitions, in every partition)."""
        results: list[Result] = []
        for start in sorted(self._dirty):
            kept = self.kept[start]
            kept.revision += 1
            results.append(self._result(kept, final=True))
            self.corrections += 1
        self._dirty.clear()
        for start in sorted(self._grown):
            results.append(self._result(self.open[start], final=False))
        self._grown.clear()
        if forget_until is not None and self.kept:
            for start in [s for s, w in self.kept.items() if w.end <= forget_until]:
                del self.kept[start]
        return results

    def _result(self, window: Window, final: bool) -> Result:
        counter = window.counter
        return Result(self.name, window.start, window.end, counter.count(), window.frames, final,
                      max(window.revision, 0), window.late_frames, counter.estimate, counter.bounds(), counter)

    def get(self, start: int) -> Window | None:
        return self.open.get(start) or self.kept.get(start)

    def union_result(self, start: int, parts: Sequence[Window], pending: Sequence[NewUsers] = (),
                     pending_frames: int = 0) -> Result:
        """The provisional record of one window (its part, if it has one yet) with the minutes not
        closed yet that fall in it: the union of their users, the sum of their frames."""
        counters = [w.counter for w in parts] or [self._counter()]
        users, bounds = union_of(counters, pending)
        return Result(self.name, start, self.span(start)[1], users, sum(w.frames for w in parts) + pending_frames,
                      False, 0, sum(w.late_frames for w in parts), counters[0].estimate, bounds)

    @property
    def kept_bytes(self) -> int:
        return sum(cast("FrozenExactCounter | HllCounter", w.counter).nbytes for w in self.kept.values())  # kept: frozen


def provisional(windows: WindowSet, minutes: Sequence[tuple[int, NewUsers, int, bool]]) -> list[Result]:
    """Early records of the windows that hold an open minute that grew (minutes as (start, users,
    frames, grew)), each counted as if its open minutes closed now; nothing changes."""
    groups: dict[int, list[tuple[NewUsers, int, bool]]] = defaultdict(list)
    for minute_start, users, frames, grew in minutes:
        groups[windows.span(minute_start)[0]].append((users, frames, grew))
    return [windows.union_result(start, [w] if (w := windows.get(start)) is not None else [],
                                 [users for users, _, _ in group], sum(f for _, f, _ in group))
            for start, group in sorted(groups.items()) if any(grew for _, _, grew in group)]
