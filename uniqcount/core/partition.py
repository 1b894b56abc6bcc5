"""The counter of one input partition: unique users per UTC minute, hour, day, ISO week, month and
year in event time. Its clock decides each frame once (watermark, lateness, outliers) and
its open minutes feed every granularity. Each partition has its own, so that one partition's frames
never move another's watermark; merge.py makes one answer of several. Pure: no I/O, no clock; every
call hands back what it emits (`Emitted`), and state.py writes the state out and reads it back.

- The watermark is the largest accepted event time minus the allowed lateness (or a later point an
  idle stream was advanced to). A window [start, end) is final once the watermark reaches `end`; it
  is emitted then with revision 0. Lateness 0 is the card's rule: emit when a later minute arrives.
- On-time frames go into their open minute (a set of uid hashes, userset.py: the hot path). When the minute closes,
  its users join the window of every granularity that holds it (windowset.py), so a frame is parsed
  and looked at once whatever the number of granularities.
- A frame whose minute was already closed is *late*; each granularity decides on its own: it may fall
  in a still open hour or day, or correct a window kept for `late_retention` seconds of event time
  after its end (re-emitted with revision + 1 at the end of the batch). A frame too late for every
  granularity is dead-lettered as `too_late`.
- A frame far ahead of the accepted event time is held by the OutlierGuard (see outliers.py).
- A quiet partition (the edge saw it caught up and idle) publishes what it holds open as final at
  once (`close_quiet`), its watermark where it was: a stream that resumes with older event time (a
  paused backfill) is still counted, and reopens those windows; their next record is a revision.

Every frame given is counted, dead-lettered or held: frames in = counted + dead + held, always.
Decisions are made frame by frame, so the latest record per window never depends on how the input
was cut into batches (a file and a Kafka topic give the same answers).
"""
from __future__ import annotations

from collections import Counter
from statistics import median_low
from typing import Any, NamedTuple, Sequence

from uniqcount.core.counters import DEFAULT_LG_K, NewUsers
from uniqcount.core.granularities import GRANULARITIES, Granularity
from uniqcount.core.minutes import MINUTE, OPEN_RUN, OpenMinute
from uniqcount.core.outliers import Held, OutlierGuard, plain
from uniqcount.core.windowset import FAR, Late, Result, WindowSet, provisional


class Emitted(NamedTuple):
    """What a call made: records, oldest first, and the (reason, ref) of frames not counted."""
    results: list[Result]
    dead: list[tuple[str, Any]]


class PartitionCounter:
    def __init__(self, allowed_lateness: int = 5, late_retention: int = 3600, outlier_jump: int = 0,
                 granularities: Sequence[Granularity] = (GRANULARITIES["minute"],), exact_up_to: str = "hour",
                 lg_k: int = DEFAULT_LG_K):
        """`exact_up_to`: granularities up to this one count exactly, longer ones with HyperLogLog."""
        names = list(GRANULARITIES)
        exact = names[:names.index(exact_up_to) + 1]
        self.allowed_lateness = allowed_lateness
        self.late_retention = late_retention
        self.lg_k = lg_k
        self.guard = OutlierGuard(outlier_jump)
        self.sets = [WindowSet(g, g.name in exact, late_retention, lg_k) for g in granularities]
        self.minutes: dict[int, OpenMinute] = {}
        self.results: list[Result] = []  # made by the call under way, handed back by _emitted
        self.dead: list[tuple[str, Any]] = []
        self.max_ts: int | None = None
        self.watermark: int | None = None
        self.counted_frames = 0
        self.late_frames = 0  # counted after their minute closed
        self.rejected: Counter[str] = Counter()
        self.frames_in = 0  # every frame given, invalid ones included (received)
        self.flushed = False  # flushed or quiet, and nothing came since: it holds nothing open
        self._next_end = FAR  # end of the oldest open window of any granularity

    def _emitted(self) -> Emitted:
        emitted = Emitted(self.results, self.dead)
        self.results, self.dead = [], []
        return emitted

    def add_many(self, users: Sequence[int], times: Sequence[int], refs: Sequence[Any]) -> Emitted:
        """Decide every frame (its user: the uid's hash, userset.py; its ts); `refs[i]` names frame i
        in the dead letters. Refs are handed back as given, except for held frames, which keep plain
        copies (`plain`). The bulk (frames of open minutes, no new maximum, nothing held) goes by runs
        (minutes.open_run); each frame that ends a run is decided here."""
        guard, minutes = self.guard, self.minutes
        self.flushed = False
        index, total = 0, len(users)
        while index < total:
            if not guard.held and self.max_ts is not None:
                start, index = index, OPEN_RUN(users, times, index, minutes, self.max_ts)
                self.counted_frames += index - start
                guard.accepted += index - start
                if index == total:
                    break
            user, ts = users[index], times[index]
            if guard.suspect(ts, self.max_ts):
                self._hold(Held(user, ts, plain(refs[index]), guard.accepted))
            else:
                self._accept(user, ts, refs[index])
            index += 1
        self._end_batch()
        return self._emitted()

    def _accept(self, user: int, ts: int, ref: Any) -> None:
        start = ts - ts % MINUTE
        minute = self.minutes.get(start)
        if minute is None:
            end = start + MINUTE
            if self.watermark is not None and end <= self.watermark:
                self._late(user, ts, ref)
                self._accepted()
                return
            minute = self.minutes[start] = OpenMinute(start)
            self._next_end = min(self._next_end, end)
        minute.users.add(user)
        minute.frames += 1
        self.counted_frames += 1
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
            self._advance(ts - self.allowed_lateness)
        self._accepted()

    def _accepted(self) -> None:
        guard = self.guard
        guard.accepted += 1
        if guard.held:
            for frame in guard.expired():
                self._reject("ts_outlier", frame.ref)

    def _late(self, user: int, ts: int, ref: Any) -> None:
        """Each granularity decides; the frame counts if any counts it."""
        watermark = self.watermark if self.watermark is not None else -FAR
        verdicts = {s.add_late(user, ts, watermark) for s in self.sets}
        if Late.COUNTED in verdicts:
            self.late_frames += 1
            self.counted_frames += 1
            self._next_end = min(self._next_end, *(s.next_end for s in self.sets))
        else:
            self._reject("too_late", ref)

    def _reject(self, reason: str, ref: Any) -> None:
        self.rejected[reason] += 1
        self.dead.append((reason, ref))

    def _hold(self, frame: Held) -> None:
        guard = self.guard
        guard.hold(frame)
        anchored = self.max_ts is not None
        if guard.confirmed(anchored):
            self._release(anchored)

    def _release(self, anchored: bool) -> None:
        """The stream moved on (or starts): accept from the smallest held time, then decide the held
        frames again in event-time order, so that none is late to another; some may be held anew. At
        the start, from the smallest time within `jump` of the median: a flipped first frame cannot
        anchor the stream."""
        held = sorted(self.guard.release(), key=lambda frame: frame.ts)
        times = [frame.ts for frame in held]
        if anchored:
            anchor = min(times)
        else:
            middle = median_low(times)
            anchor = min(t for t in times if abs(t - middle) <= self.guard.jump)
        self.max_ts = anchor if self.max_ts is None else max(self.max_ts, anchor)
        self._advance(anchor - self.allowed_lateness)
        for frame in held:
            if self.guard.suspect(frame.ts, self.max_ts):
                self.guard.hold(Held(frame.user, frame.ts, frame.ref, self.guard.accepted))
            else:
                self._accept(frame.user, frame.ts, frame.ref)

    def _advance(self, watermark: int) -> None:
        if self.watermark is None or watermark > self.watermark:
            self.watermark = watermark
            if watermark >= self._next_end:
                self._close_until(watermark)

    def _close_until(self, watermark: int) -> None:
        """Close the minutes ending by the watermark, then emit the windows of every granularity
        that end by it."""
        self._close_minutes(watermark)
        for windows in self.sets:
            self.results += windows.close_until(watermark)
        self._next_end = min(min(self.minutes, default=FAR) + MINUTE, *(s.next_end for s in self.sets))

    def _close_minutes(self, until: int) -> None:
        """The open minutes ending by `until`, oldest first, into the windows of every granularity."""
        for start in sorted(s for s in self.minutes if s + MINUTE <= until):
            minute = self.minutes.pop(start)
            users = minute.new_users(self.lg_k)
            for windows in self.sets:
                windows.add_minute(start, users, minute.frames)

    def _end_batch(self) -> None:
        forget_until = self.forget_until
        for windows in self.sets:
            self.results += windows.end_batch(forget_until)

    @property
    def forget_until(self) -> int | None:
        """Kept windows ending by then are forgotten: past retention."""
        return None if self.watermark is None else self.watermark - self.late_retention

    def reindex(self) -> None:
        """After the minutes and windows were filled in from outside (state.restore)."""
        for windows in self.sets:
            windows.next_end = min((w.end for w in windows.open.values()), default=FAR)
        self._next_end = min(min(self.minutes, default=FAR) + MINUTE, *(s.next_end for s in self.sets))

    def received(self, frames: int, invalid: Sequence[str]) -> None:
        """Frames handed to the process for this partition, and the reasons of those that did not
        parse (dead-lettered by the edge): so the state holds the whole reconciliation."""
        self.frames_in += frames
        self.rejected.update(invalid)

    def advance_watermark(self, watermark: int) -> Emitted:
        """Move the watermark on without a frame (an idle stream); never backwards."""
        if self.watermark is not None:
            self._advance(watermark)
            self._end_batch()
        return self._emitted()

    def settle(self) -> None:
        """Start a stream that has fewer frames than the anchor needs (end of input, idle)."""
        if self.max_ts is None and self.guard.held:
            self._release(anchored=False)

    def flush(self) -> Emitted:
        """End of input: decide held frames (anchor if the stream never started, else they are
        outliers) and close every open window of every granularity."""
        self.settle()
        if self.guard.held:
            for frame in self.guard.release():
                self._reject("ts_outlier", frame.ref)
        while ends := [start + MINUTE for start in self.minutes] + [w.end for s in self.sets for w in s.open.values()]:
            self._advance(max(ends))  # again for the windows that the last minutes opened
        self._end_batch()
        self.flushed = True
        return self._emitted()

    def close_quiet(self) -> Emitted:
        """A quiet partition: every open minute and window emitted final now (not held back until
        event time passes their end, which may take hours), the watermark unchanged. Once quiet, and
        no frame since, it holds nothing open: the edge asks again and again while it stays idle."""
        if self.flushed:
            return self._emitted()
        self.settle()
        self._close_minutes(FAR)
        for windows in self.sets:
            self.results += windows.close_open()
        self._next_end = FAR
        self._end_batch()
        self.flushed = True
        return self._emitted()

    def open_minutes(self) -> list[tuple[int, NewUsers, int, bool]]:
        """(start, users, frames, grew since the last provisional records) of every open minute, oldest
        first; from now on they count as reported."""
        minutes = [(m.start, m.new_users(self.lg_k), m.frames, m.frames != m.reported)
                   for _, m in sorted(self.minutes.items())]
        for minute in self.minutes.values():
            minute.reported = minute.frames
        return minutes

    def provisional(self) -> list[Result]:
        """Early results: every window holding an open minute that grew since the last provisional
        records, counted as if its open minutes closed now."""
        minutes = self.open_minutes()
        return [r for windows in self.sets for r in provisional(windows, minutes)]

    @property
    def held_frames(self) -> int:
        return len(self.guard.held)

    @property
    def corrections(self) -> int:
        return sum(s.corrections for s in self.sets)

    @property
    def open_windows(self) -> int:
        return len(self.minutes) + sum(len(s.open) for s in self.sets if s.name != "minute")

    @property
    def kept_windows(self) -> int:
        return sum(len(s.kept) for s in self.sets)

    @property
    def kept_bytes(self) -> int:
        return sum(s.kept_bytes for s in self.sets)
