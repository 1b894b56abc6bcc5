"""Where a restarted consumer must re-read from, and the event-time state it must resume with.

Each batch from Kafka is tagged with a Resume: the offsets before it and the watermark of that
moment. Every window still in memory (open, or kept for late frames) and every held frame remembers
the Resume of the batch it started in. Committing the earliest of them, with its watermark in the
commit metadata, means a crash loses nothing: the restarted consumer re-reads every frame that the
state in memory was made of, and judges each one against the same watermark as before. The metadata
also says which windows were already emitted and forgotten (`done_until`): the re-read batches
may hold some of their frames, which were counted before the crash and must not make a partial
record that would replace the right one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import msgspec


@dataclass(frozen=True, slots=True)
class Resume:
    seq: int  # batches in arrival order: the earliest Resume also has the earliest event-time state
    offsets: dict[Any, int]
    max_ts: int | None
    watermark: int | None

    def __lt__(self, other: Resume) -> bool:
        """Earlier batch: a window fed by several minutes needs the earliest of their points."""
        return self.seq < other.seq


def earliest(points: Iterable[Resume], positions: dict[Any, int]) -> tuple[dict[Any, int], Resume | None]:
    """Offsets to commit (per partition the smallest any point needs, else the current position), and
    the earliest point (None when nothing in memory needs re-reading)."""
    offsets = dict(positions)
    first = None
    for point in points:
        for tp, offset in point.offsets.items():
            if offset < offsets.get(tp, offset + 1):
                offsets[tp] = offset
        if first is None or point < first:
            first = point
    return offsets, first


def encode_metadata(max_ts: int | None, watermark: int | None, done_until: int | None) -> str:
    return msgspec.json.encode({"max_ts": max_ts, "watermark": watermark, "done_until": done_until}).decode()


def decode_metadata(text: str | None) -> tuple[int | None, int | None, int | None]:
    """(max_ts, watermark, done_until) from a commit's metadata; Nones for none or a foreign one."""
    try:
        state = msgspec.json.decode(text or "{}")
        return state.get("max_ts"), state.get("watermark"), state.get("done_until")
    except (msgspec.DecodeError, AttributeError):
        return None, None, None
