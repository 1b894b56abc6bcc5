"""Throughput bookkeeping for status lines and summaries (wall clock, for humans only)."""
from __future__ import annotations

import sys
import time


class Meter:
    def __init__(self, interval: float):
        self.started = time.monotonic()
        self.interval = interval
        self._last_report = self.started
        self.frames = 0
        self.bytes = 0

    def add(self, frames: int, nbytes: int) -> None:
        self.frames += frames
        self.bytes += nbytes

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def frame_rate(self) -> float:
        return self.frames / self.elapsed

    def due(self) -> bool:
        """True once every `interval` seconds: time for a status line."""
        now = time.monotonic()
        if self.interval > 0 and now - self._last_report >= self.interval:
            self._last_report = now
            return True
        return False

    def rates(self) -> str:
        return (f"{self.frames:,} frames, {self.bytes / 1e6:,.1f} MB in {self.elapsed:.1f} s: "
                f"{self.frame_rate:,.0f} frames/s, {self.bytes / 1e6 / self.elapsed:,.1f} MB/s")


def status(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
