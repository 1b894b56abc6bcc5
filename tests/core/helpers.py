"""What the core's tests share: the expected windows from `datetime` (never from uniqcount's own
calendar), and a counter whose emitted records gather until `take()`: the core hands back what each
call emits, and the event-time tests read a run's output in one go."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.partition import Emitted, PartitionCounter
from uniqcount.core.userset import uid_hash


def calendar_start(name: str, ts: int) -> int:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    day = moment.replace(hour=0, minute=0, second=0)
    start = {
        "minute": moment.replace(second=0),
        "hour": moment.replace(minute=0, second=0),
        "day": day,
        "week": day - timedelta(days=moment.isoweekday() - 1),
        "month": day.replace(day=1),
        "year": day.replace(month=1, day=1),
    }[name]
    return int(start.timestamp())


def brute_force(frames: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
    """(granularity, start) -> (unique users, frames), at every granularity."""
    users, counts = defaultdict(set), defaultdict(int)
    for uid, ts in frames:
        for name in GRANULARITIES:
            key = name, calendar_start(name, ts)
            users[key].add(uid)
            counts[key] += 1
    return {key: (len(users[key]), counts[key]) for key in users}


def add_frames(target: Any, *args: Any) -> Emitted:
    """target.add_many([partition,] pairs, refs) with (uid, ts) pairs, as the parser hands them on:
    the uids' hashes and the times in columns."""
    *partition, pairs, refs = args
    pairs = list(pairs)
    return target.add_many(*partition, [uid_hash(uid) for uid, _ in pairs], [ts for _, ts in pairs], refs)


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

    def close_quiet(self) -> Emitted:
        return self._gather(self.counter.close_quiet())

    def take(self) -> tuple[list[Any], list[Any]]:
        taken = self.results, self.dead
        self.results, self.dead = [], []
        return taken


def collected(*args: Any, **kwargs: Any) -> Collected:
    return Collected(PartitionCounter(*args, **kwargs))
