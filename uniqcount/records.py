"""Output records: one JSON object per window, keyed `<granularity>:<window_start>`.

The key makes `events-output` compactable: the latest record of a key is the window's answer.
"""
from __future__ import annotations

from datetime import datetime, timezone

import msgspec

from .windows import Window

_encode = msgspec.json.Encoder().encode


def iso_utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_record(window: Window, granularity: str = "minute", final: bool = True,
                  revision: int = 0) -> dict:
    return {
        "granularity": granularity,
        "window_start": window.start,
        "window_end": window.end,
        "start_iso": iso_utc(window.start),
        "unique_users": len(window.users),
        "frames": window.frames,
        "final": final,
        "revision": revision,
    }


def record_key(record: dict) -> bytes:
    return f"{record['granularity']}:{record['window_start']}".encode()


def encode(record: dict) -> bytes:
    return _encode(record)
