"""Partial results: what the counter of one input partition tells the merger (core/merger.py), as
records of the compacted topic `<OUTPUT_TOPIC>-partials`.

- A window part, key `<granularity>:<start>:<partition>:<n>`: the partition's final record of the
  window (or a correction: its revision says which) with what a union needs: the users as sorted
  64-bit hashes (exact windows, in parts of at most PART_HASHES: 512 KiB each, so an exact hour of
  any size fits Kafka's records) or the HLL sketch in compact form (at most 2 MiB at lg_k 21). When
  the input is keyed by uid, partitions' users are disjoint, and an exact window carries its count
  only (`keyed`): the merger sums.
- A mark, key `mark:<partition>`: the partition's watermark, whether it is idle (the edge saw it
  caught up and silent) and whether it was flushed or went quiet (it holds nothing open).

A later version of a key replaces the earlier one: the topic's latest record per key is what the
merger needs. Pure: bytes in, bytes out.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

from uniqcount.core.counters import ExactCounter, FrozenExactCounter, HllCounter, UserCounter
from uniqcount.core.entries import FormatError, MarkEntry, WindowPartEntry, decode, encode
from uniqcount.core.userset import split_hashes
from uniqcount.core.windowset import FAR, Result

MARK = "mark"


class WindowPart(NamedTuple):
    """One record of a partition's window: where it belongs (its key) and what it says (its value)."""
    granularity: str
    start: int
    partition: int
    part: int  # of value.parts
    value: WindowPartEntry


class Mark(NamedTuple):
    partition: int
    watermark: int | None
    idle: bool
    flushed: bool


def window_records(partition: int, result: Result, keyed: bool) -> list[tuple[bytes, bytes]]:
    """The records of a partition's final or corrected window: one, or one per part of its hashes."""
    counter = result.counter
    if isinstance(counter, HllCounter):
        data: list[bytes | None] = [counter.to_bytes()]
    elif keyed:
        data = [None]
    else:
        data = list[bytes | None](split_hashes(_hashes(counter)))
    keys = window_keys(result.granularity, result.start, partition, len(data))
    return [(key, encode(WindowPartEntry(len(data), result.revision, result.frames, result.late_frames, result.users,
                                         part)))
            for key, part in zip(keys, data)]


def _hashes(counter: UserCounter | None) -> bytes:
    if isinstance(counter, (ExactCounter, FrozenExactCounter)):
        return counter.to_bytes()
    raise TypeError(f"a window's partial needs its counter, not {counter!r}")


def slowest(marks: Sequence[Mark], flushed_far: bool = False) -> int | None:
    """The slowest of these partitions' watermarks, idle ones left out (all idle: every one that has
    a watermark), a flushed one at FAR when `flushed_far`. None while one counted has no watermark."""
    def time(mark: Mark) -> int | None:
        return FAR if flushed_far and mark.flushed else mark.watermark

    times = [time(m) for m in marks if not m.idle] or [time(m) for m in marks if m.watermark is not None]
    if not times or None in times:
        return None
    return min(t for t in times if t is not None)  # every one of them


def mark_record(mark: Mark) -> tuple[bytes, bytes]:
    return f"{MARK}:{mark.partition}".encode(), encode(MarkEntry(mark.watermark, mark.idle, mark.flushed))


def window_keys(granularity: str, start: int, partition: int, parts: int) -> list[bytes]:
    """The keys of one window part's records."""
    return [f"{granularity}:{start}:{partition}:{n}".encode() for n in range(parts)]


def parse(key: bytes, value: bytes) -> WindowPart | Mark:
    """A partials record (not a tombstone). FormatError for anything else."""
    try:
        name, *rest = key.decode().split(":")
        if name == MARK:
            (partition,) = rest
            mark = decode(value, MarkEntry)
            return Mark(int(partition), mark.watermark, mark.idle, mark.flushed)
        window = decode(value, WindowPartEntry)
        start, window_partition, part = map(int, rest)
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise FormatError(f"not a partial result: {key[:80]!r}: {exc}") from None
    return WindowPart(name, start, window_partition, part, window)
