"""Throughput bookkeeping for status lines and summaries (wall clock, for humans only)."""
from __future__ import annotations

import sys
import time


class Ticker:
    """True from due() once every `interval` seconds of wall clock; never when the interval is 0."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if self.interval > 0 and now - self._last >= self.interval:
            self._last = now
            return True
        return False


class Meter:
    def __init__(self, interval: float):
        self.started = time.monotonic()
        self.ticker = Ticker(interval)
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
        """Time for a status line."""
        return self.ticker.due()

    def rates(self) -> str:
        return (f"{self.frames:,} frames, {self.bytes / 1e6:,.1f} MB in {self.elapsed:.1f} s: "
                f"{self.frame_rate:,.0f} frames/s, {self.bytes / 1e6 / self.elapsed:,.1f} MB/s")


def status(line: str) -> None:
    """One line for the user, on stderr (stdout carries the records)."""
    print(line, file=sys.stderr, flush=True)


def error(message: str, code: int = 1) -> int:
    """A failure the user can act on: one line, and the exit code to return."""
    status(f"error: {message}")
    return code
