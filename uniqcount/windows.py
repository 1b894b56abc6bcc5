"""Tumbling UTC minute windows of exact unique users, closed by an event-time watermark.

Pure: no I/O, no clock. The watermark is the largest event time seen minus the allowed lateness;
a window [start, end) is final once the watermark reaches `end`. With lateness 0 that is the
card's rule: a minute is emitted when a frame of a later minute arrives; with 5 s (the default),
frames up to 5 s late still count, at the price of emitting each minute 5 s of event time later.
A frame whose window was already emitted is counted as late (never silently dropped from the
metrics).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

MINUTE = 60
_FAR = 1 << 62


@dataclass(slots=True)
class Window:
    start: int
    end: int
    users: set[str] = field(default_factory=set)
    frames: int = 0
    # opaque to the core: the edge stores where to resume reading so that this window is rebuilt
    resume_from: Any = None


class MinuteWindows:
    def __init__(self, allowed_lateness: int = 0, size: int = MINUTE):
        self.size = size
        self.allowed_lateness = allowed_lateness
        self.open: dict[int, Window] = {}
        self.closed: list[Window] = []  # outbox: final windows not yet taken by the edge
        self.max_ts: int | None = None
        self.late_frames = 0
        self.counted_frames = 0
        self._next_end = _FAR + size  # end of the oldest open window

    @property
    def watermark(self) -> int | None:
        return None if self.max_ts is None else self.max_ts - self.allowed_lateness

    def add_many(self, frames: Iterable[tuple[str, int]], resume_from: Any = None) -> None:
        """Count (uid, ts) pairs; windows that become final move to `closed`.

        Windows close frame by frame, never per batch, so results do not depend on how the input
        was split into batches (a file and a Kafka topic give the same records).
        """
        size, lateness, opened = self.size, self.allowed_lateness, self.open
        watermark = self.watermark
        late = counted = 0
        for uid, ts in frames:
            start = ts - ts % size
            window = opened.get(start)
            if window is None:
                if watermark is not None and start + size <= watermark:
                    late += 1
                    continue
                window = opened[start] = Window(start, start + size, resume_from=resume_from)
                self._next_end = min(self._next_end, start + size)
            window.users.add(uid)
            window.frames += 1
            counted += 1
            if watermark is None or ts - lateness > watermark:
                self.max_ts = ts
                watermark = ts - lateness
                if watermark >= self._next_end:
                    self.close_until(watermark)
        self.late_frames += late
        self.counted_frames += counted

    def close_until(self, watermark: int | None) -> None:
        """Move every window with end <= watermark to the outbox, oldest first."""
        if watermark is None:
            return
        for start in sorted(s for s in self.open if s + self.size <= watermark):
            self.closed.append(self.open.pop(start))
        self._next_end = min(self.open, default=_FAR) + self.size

    def flush(self) -> None:
        """Close every open window (end of input, or an idle stream): the watermark moves to the
        end of the newest one, so later frames of these minutes count as late like any other."""
        if self.open:
            last_end = max(self.open) + self.size
            self.max_ts = max(self.max_ts, last_end + self.allowed_lateness)
            self.close_until(last_end)

    def take_closed(self) -> list[Window]:
        closed, self.closed = self.closed, []
        return closed

    def resume_point(self) -> Any:
        """`resume_from` of the oldest open window: reading from there rebuilds every open window."""
        if not self.open:
            return None
        return self.open[min(self.open)].resume_from
