"""What the live page shows (`./run.sh serve`): the latest record of every key of `events-output`, by
granularity and start, and a numbered log of the keys that changed, so that a page that has seen the
board up to change N is sent exactly the records changed after N (a correction, a provisional record
made final, a new window). Records are kept as the bytes read, and served as they are.
Pure: records in, bytes out.
"""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

import msgspec

LOG_LENGTH = 100_000  # keys changed that a page reconnecting can catch up on; beyond, it reloads


class Board:
    def __init__(self, log_length: int = LOG_LENGTH) -> None:
        self.records: dict[str, dict[int, bytes]] = {}  # granularity -> start -> latest record
        self.starts: dict[str, list[int]] = {}  # sorted
        self.seq = 0  # changes applied
        self.log: deque[tuple[int, str, int]] = deque(maxlen=log_length)  # (seq, granularity, start)
        self.unreadable = 0

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record of the topic (a tombstone when value is None); False, and counted, for one that
        is no window's (a key without `:<start>`, a value that is no JSON object): served as they are,
        records must parse on the page."""
        try:
            granularity, start_text = (key or b"").decode().rsplit(":", 1)
            start = int(start_text)
            if value is not None and not isinstance(msgspec.json.decode(value), dict):
                raise ValueError("not a record")
        except (UnicodeDecodeError, ValueError, msgspec.DecodeError):
            self.unreadable += 1
            return False
        windows = self.records.setdefault(granularity, {})
        starts = self.starts.setdefault(granularity, [])
        if value is None:
            if windows.pop(start, None) is None:
                return True
            del starts[bisect_left(starts, start)]
        else:
            if start not in windows:
                if not starts or start > starts[-1]:
                    starts.append(start)
                else:
                    insort(starts, start)
            windows[start] = value
        self.seq += 1
        self.log.append((self.seq, granularity, start))
        return True

    def windows(self, granularity: str, start: int | None = None, end: int | None = None,
                last: int | None = None) -> list[bytes]:
        """The latest records of the windows of `granularity` that start in [start, end), in order; the
        `last` of them only."""
        starts = self.starts.get(granularity, [])
        lo = 0 if start is None else bisect_left(starts, start)
        hi = len(starts) if end is None else bisect_left(starts, end)
        if last is not None:
            lo = max(lo, hi - last)
        windows = self.records[granularity] if starts else {}
        return [windows[s] for s in starts[lo:hi]]

    def granularities(self) -> dict[str, int]:
        """Windows held, by granularity."""
        return {g: len(w) for g, w in self.records.items() if w}

    def since(self, seq: int) -> list[bytes] | None:
        """The latest records of the windows changed after change `seq`, each once, in the order of their
        last change; None when the log no longer reaches back that far (the page starts over)."""
        if seq >= self.seq:
            return []
        if not self.log or self.log[0][0] > seq + 1:
            return None
        changed: dict[tuple[str, int], None] = {}
        for n, granularity, start in reversed(self.log):
            if n <= seq:
                break
            changed.setdefault((granularity, start), None)
        out = []
        for granularity, start in reversed(list(changed)):
            record = self.records[granularity].get(start)
            if record is not None:
                out.append(record)
        return out
