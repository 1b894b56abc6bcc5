"""The serialization study's own check runs: every format gives back each frame's uid and ts."""
from __future__ import annotations

from bench.measure import first_lines
from bench.serialization import batched_bytes, measure
from tests.helpers import ORDERED


def test_every_format_round_trips_uid_and_ts():
    lines = first_lines(ORDERED, 200)
    rows = measure(lines)
    assert len(rows) == 8 and all(r["bytes"] > 0 for r in rows)
    full = next(r for r in rows if r["format"].startswith("JSON, full"))
    assert full["bytes"] == sum(map(len, lines)) / len(lines)


def test_batches_hold_every_message():
    messages = [bytes([i % 251]) * 1500 for i in range(2000)]  # 3 MB: several 1 MB batches
    assert batched_bytes(messages, "none") > sum(map(len, messages)) > batched_bytes(messages, "zstd")
