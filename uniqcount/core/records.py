"""Output records: one JSON object per window result, keyed `<granularity>:<window_start>`.

The key makes `events-output` compactable: the latest record of a key is the window's answer
(a correction replaces the record before it, a final record replaces the provisional ones).
However many partitions and consumers count, a window has one record per revision: of several
partitions, the merger's (core/merger.py).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec

from uniqcount.core.windowset import Result

_encode = msgspec.json.Encoder().encode


def iso_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_record(result: Result) -> dict[str, Any]:
    record = {
        "granularity": result.granularity,
        "window_start": result.start,
        "window_end": result.end,
        "start_iso": iso_utc(result.start),
        "unique_users": result.users,
        "estimate": result.estimate,
        "frames": result.frames,
        "final": result.final,
        "revision": result.revision,
        "late_frames": result.late_frames,
    }
    if result.bounds is not None:
        record["lower_bound"], record["upper_bound"] = result.bounds
    return record


def record_kind(result: Result) -> str:
    """provisional (final: false), correction (a final record that took late frames) or final."""
    return "provisional" if not result.final else "correction" if result.late_frames else "final"


def record_key(record: dict[str, Any]) -> bytes:
    return f"{record['granularity']}:{record['window_start']}".encode()


def encode(record: dict[str, Any]) -> bytes:
    return _encode(record)
