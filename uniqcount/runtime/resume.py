"""Where a restarted consumer must re-read from, and the event-time state it must resume with.

Each partition is resumed on its own. Each batch from a partition is tagged with a Resume: its
first offset and the partition's event-time state of that moment. Every window still in memory
(open, or kept for late frames) and every held frame remembers the Resume of the batch it started
in. Committing the partition's earliest, with its watermark in the commit metadata, means a crash
loses nothing: the restarted consumer re-reads every frame that the
state in memory was made of, and judges each one against the same watermark as before. The metadata
also says which windows were already emitted and forgotten (`done_until`): the re-read batches
may hold some of their frames, which were counted before the crash and must not make a partial
record that would replace the right one.
"""
from __future__ import annotations

from typing import Iterable, NamedTuple

import msgspec


class Resume(NamedTuple):
    """Plain numbers (the core keeps them, and a snapshot writes them): offsets grow batch by
    batch, so the smallest offset also has the earliest event-time state."""
    offset: int
    max_ts: int | None
    watermark: int | None


def earliest(points: Iterable[Resume | None]) -> Resume | None:
    """The point a restart must re-read from (None when nothing in memory needs re-reading)."""
    return min((point for point in points if point is not None), default=None)


def encode_metadata(max_ts: int | None, watermark: int | None, done_until: int | None) -> str:
    return msgspec.json.encode({"max_ts": max_ts, "watermark": watermark, "done_until": done_until}).decode()


def decode_metadata(text: str | None) -> tuple[int | None, int | None, int | None]:
    """(max_ts, watermark, done_until) from a commit's metadata; Nones for none or a foreign one."""
    try:
        state = msgspec.json.decode(text or "{}")
        return state.get("max_ts"), state.get("watermark"), state.get("done_until")
    except (msgspec.DecodeError, AttributeError):
        return None, None, None
