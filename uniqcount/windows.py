"""Tumbling UTC minute windows of exact unique users in event time: watermark, late corrections,
retention, outliers. Pure: no I/O, no clock; the edges pass frames in and take results out.

- The watermark is the largest accepted event time minus the allowed lateness (or a later point an
  idle stream was advanced to). A window [start, end) is final once the watermark reaches `end`; it
  is emitted then with revision 0. Lateness 0 is the card's rule: emit when a later minute arrives.
- A frame whose window was already emitted is *late*. Within `late_retention` seconds of event time
  after the window's end it still counts: the window is kept (as compact hashes) and re-emitted with
  revision + 1 at the end of the batch. Later than that it is dead-lettered as `too_late`.
- A frame far ahead of the accepted event time is held by the OutlierGuard (see outliers.py).

Every frame given is counted, dead-lettered or held: frames in = counted + dead + held, always.
Decisions are made frame by frame, so the latest record per window never depends on how the input
was cut into batches (a file and a Kafka topic give the same answers).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from statistics import median_low
from typing import Any, Iterator, Sequence

from .outliers import Held, OutlierGuard
from .userset import CompactUsers

MINUTE = 60
_FAR = 1 << 62


@dataclass(slots=True)
class Result:
    """What one output record says about a window."""
    start: int
    end: int
    users: int
    frames: int
    final: bool
    revision: int
    late_frames: int


@dataclass(slots=True)
class OpenWindow:
    start: int
    end: int
    resume_from: Any  # opaque to the core: where the edge must re-read from to rebuild this window
    users: set[str] = field(default_factory=set)
    frames: int = 0
    reported: int = 0  # frames in the last provisional record


@dataclass(slots=True)
class KeptWindow:
    """An emitted window kept for late frames until the watermark passes end + retention."""
    start: int
    end: int
    resume_from: Any
    users: CompactUsers
    frames: int = 0
    revision: int = -1  # of the last record emitted; -1: none yet (a window made only of late frames)
    late_frames: int = 0


class MinuteWindows:
    def __init__(self, allowed_lateness: int = 5, late_retention: int = 3600, outlier_jump: int = 0,
                 size: int = MINUTE):
        self.size = size
        self.allowed_lateness = allowed_lateness
        self.late_retention = late_retention
        self.guard = OutlierGuard(outlier_jump)
        self.open: dict[int, OpenWindow] = {}
        self.kept: dict[int, KeptWindow] = {}
        self.results: list[Result] = []  # outbox, oldest first
        self.dead: list[tuple[str, Any]] = []  # outbox: (reason, ref) of frames not counted
        self.max_ts: int | None = None
        self.watermark: int | None = None
        self.counted_frames = 0
        self.late_frames = 0
        self.corrections = 0
        self.rejected: Counter[str] = Counter()
        self.replayed = 0  # frames of windows finished before a restart: counted then, skipped now
        self.done_until: int | None = None  # windows ending by then were finished before a restart
        self._next_end = _FAR  # end of the oldest open window
        self._dirty: set[int] = set()  # kept windows changed by late frames in this batch

    def add_many(self, frames: Sequence[tuple[str, int]], refs: Sequence[Any], resume_from: Any = None) -> None:
        """Decide every (uid, ts) frame; `refs[i]` names frame i in the dead letters (e.g. its bytes)."""
        guard, opened, size = self.guard, self.open, self.size
        fast = 0
        for (uid, ts), ref in zip(frames, refs):
            window = opened.get(ts - ts % size)
            if window is not None and not guard.held and ts <= self.max_ts:
                # the bulk: an open window, no new maximum, nothing held
                window.users.add(uid)
                window.frames += 1
                fast += 1
                continue
            self.counted_frames += fast
            guard.accepted += fast
            fast = 0
            if guard.suspect(ts, self.max_ts):
                self._hold(Held(uid, ts, ref, resume_from, guard.accepted))
            else:
                self._accept(uid, ts, ref, resume_from)
        self.counted_frames += fast
        guard.accepted += fast
        self._end_batch()

    def _accept(self, uid: str, ts: int, ref: Any, resume_from: Any) -> None:
        start = ts - ts % self.size
        window = self.open.get(start)
        if window is None:
            if self.done_until is not None and start + self.size <= self.done_until:
                self._finished_before_restart(start, ref)
                self._accepted()
                return
            if self.watermark is not None and start + self.size <= self.watermark:
                self._late(uid, start, ref, resume_from)
                self._accepted()
                return
            window = self.open[start] = OpenWindow(start, start + self.size, resume_from)
            self._next_end = min(self._next_end, window.end)
        window.users.add(uid)
        window.frames += 1
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

    def _beyond_retention(self, start: int) -> bool:
        return self.watermark is not None and start + self.size + self.late_retention <= self.watermark

    def _late(self, uid: str, start: int, ref: Any, resume_from: Any) -> None:
        if self._beyond_retention(start):
            self._reject("too_late", ref)
            return
        kept = self.kept.get(start)
        if kept is None:
            kept = self.kept[start] = KeptWindow(start, start + self.size, resume_from, CompactUsers())
        kept.users.add(uid)
        kept.frames += 1
        kept.late_frames += 1
        self.late_frames += 1
        self.counted_frames += 1
        self._dirty.add(start)

    def _finished_before_restart(self, start: int, ref: Any) -> None:
        """Re-read after a restart: the window was emitted and forgotten before the crash. Its frames
        were counted then (skip them) or were too late then (dead-letter them again)."""
        if self._beyond_retention(start):
            self._reject("too_late", ref)
        else:
            self.replayed += 1

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
        """The stream moved on (or starts): accept from the smallest held time (at the start, the
        median), then decide the held frames again in arrival order; some may be held anew."""
        held = self.guard.release()
        times = [frame.ts for frame in held]
        anchor = min(times) if anchored else median_low(times)
        self.max_ts = anchor if self.max_ts is None else max(self.max_ts, anchor)
        self._advance(anchor - self.allowed_lateness)
        for frame in held:
            if self.guard.suspect(frame.ts, self.max_ts):
                self.guard.hold(Held(frame.uid, frame.ts, frame.ref, frame.resume_from, self.guard.accepted))
            else:
                self._accept(frame.uid, frame.ts, frame.ref, frame.resume_from)

    def _advance(self, watermark: int) -> None:
        if self.watermark is None or watermark > self.watermark:
            self.watermark = watermark
            if watermark >= self._next_end:
                self._close_until(watermark)

    def _close_until(self, watermark: int) -> None:
        """Emit every open window with end <= watermark, oldest first, and keep it for late frames."""
        for start in sorted(s for s, w in self.open.items() if w.end <= watermark):
            window = self.open.pop(start)
            self.results.append(Result(start, window.end, len(window.users), window.frames, True, 0, 0))
            if self.late_retention > 0:
                self.kept[start] = KeptWindow(start, window.end, window.resume_from,
                                              CompactUsers(window.users), window.frames, 0)
        self._next_end = min((w.end for w in self.open.values()), default=_FAR)

    def _end_batch(self) -> None:
        """Emit one correction per kept window changed in this batch, then forget what is past retention."""
        for start in sorted(self._dirty):
            kept = self.kept[start]
            kept.revision += 1
            self.results.append(Result(start, kept.end, len(kept.users), kept.frames, True, kept.revision,
                                       kept.late_frames))
            self.corrections += 1
        self._dirty.clear()
        if self.watermark is not None and self.kept:
            horizon = self.watermark - self.late_retention
            for start in [s for s, w in self.kept.items() if w.end <= horizon]:
                del self.kept[start]

    def resume(self, max_ts: int | None, watermark: int | None, done_until: int | None) -> None:
        """Continue a stream from a committed point with the event-time state it had (resume.py);
        windows ending by `done_until` were emitted and forgotten before the restart."""
        if self.max_ts is None:
            self.max_ts, self.watermark, self.done_until = max_ts, watermark, done_until

    @property
    def finished_until(self) -> int | None:
        """Windows ending by then are emitted and forgotten: no frame can change them any more."""
        return None if self.watermark is None else self.watermark - self.late_retention

    def advance_watermark(self, watermark: int) -> None:
        """Move the watermark on without a frame (an idle stream); never backwards."""
        if self.watermark is not None:
            self._advance(watermark)
            self._end_batch()

    def settle(self) -> None:
        """Start a stream that has fewer frames than the anchor needs (end of input, idle)."""
        if self.max_ts is None and self.guard.held:
            self._release(anchored=False)

    def flush(self) -> None:
        """End of input: decide held frames (anchor if the stream never started, else they are
        outliers) and close every open window."""
        self.settle()
        if self.guard.held:
            for frame in self.guard.release():
                self._reject("ts_outlier", frame.ref)
        if self.open:
            self._advance(max(w.end for w in self.open.values()))
        self._end_batch()

    def provisional(self) -> list[Result]:
        """Early results: open windows that grew since their last provisional record."""
        results = []
        for start in sorted(self.open):
            window = self.open[start]
            if window.frames != window.reported:
                window.reported = window.frames
                results.append(Result(start, window.end, len(window.users), window.frames, False, 0, 0))
        return results

    def take(self) -> tuple[list[Result], list[tuple[str, Any]]]:
        results, dead = self.results, self.dead
        self.results, self.dead = [], []
        return results, dead

    def resume_points(self) -> Iterator[Any]:
        """`resume_from` of everything still in memory: re-reading from the earliest rebuilds it all."""
        for window in self.open.values():
            yield window.resume_from
        for kept in self.kept.values():
            yield kept.resume_from
        for frame in self.guard.held:
            yield frame.resume_from

    @property
    def held_frames(self) -> int:
        return len(self.guard.held)

    @property
    def kept_bytes(self) -> int:
        return sum(kept.users.nbytes for kept in self.kept.values())
