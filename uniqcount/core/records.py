"""Output records: one JSON object per window result, keyed `<granularity>:<window_start>`.

The key makes `events-output` compactable: the latest record of a key is the window's answer
(a correction replaces the record before it, a final record replaces the provisional ones).
A consumer that owns only some of the input topic's partitions says so in every record
(`"partial": true`, `"partitions"`) and in its key (`minute:1718000000:partial:0,2`): its records
never replace the answers of the whole topic.
"""
from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from uniqcount.core.windowset import Result

_encode = msgspec.json.Encoder().encode


def iso_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_record(result: Result) -> dict:
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
    if result.partitions is not None:
        record["partial"] = True
        record["partitions"] = list(result.partitions)
    return record


def record_kind(result: Result) -> str:
    """provisional (final: false), correction (a final record that took late frames) or final."""
    return "provisional" if not result.final else "correction" if result.late_frames else "final"


def record_key(record: dict) -> bytes:
    partial = f":partial:{','.join(map(str, record['partitions']))}" if record.get("partial") else ""
    return f"{record['granularity']}:{record['window_start']}{partial}".encode()


def encode(record: dict) -> bytes:
    return _encode(record)
