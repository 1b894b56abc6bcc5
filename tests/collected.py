"""A core counter whose emitted records and dead letters gather until `take()`: the core hands back
what each call emits, and the event-time tests read a run's output in one go."""
from __future__ import annotations

from typing import Any

from uniqcount.core.partition import Emitted, PartitionCounter


class Collected:
    def __init__(self, counter: PartitionCounter):
        self.counter = counter
        self.results: list[Any] = []
        self.dead: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.counter, name)

    def _gather(self, emitted: Emitted) -> Emitted:
        self.results += emitted.results
        self.dead += emitted.dead
        return emitted

    def add_many(self, *args: Any, **kwargs: Any) -> Emitted:
        return self._gather(self.counter.add_many(*args, **kwargs))

    def advance_watermark(self, watermark: int) -> Emitted:
        return self._gather(self.counter.advance_watermark(watermark))

    def flush(self) -> Emitted:
        return self._gather(self.counter.flush())

    def take(self) -> tuple[list[Any], list[Any]]:
        taken = self.results, self.dead
        self.results, self.dead = [], []
        return taken


def collected(*args: Any, **kwargs: Any) -> Collected:
    return Collected(PartitionCounter(*args, **kwargs))
