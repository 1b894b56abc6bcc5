"""The byte form of everything the consumer keeps in Kafka (state entries, partial results): named
msgspec structs, each a MessagePack array whose first element is the format's version (the struct's
tag) and then its fields in order. Format 1 was written as plain lists before the structs had names:
the same bytes, so those entries still read. An entry of another version, or no entry at all, is a
FormatError that says which."""
from __future__ import annotations

from typing import Any, TypeVar

import msgspec

VERSION = 1
E = TypeVar("E", bound="Entry")
_encode = msgspec.msgpack.Encoder().encode
_decoders: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}


class FormatError(ValueError):
    """An entry this version cannot read (another format version, or not an entry at all)."""


class Entry(msgspec.Struct, array_like=True, tag=VERSION):
    """The base of every entry: its version first."""


class ClockEntry(Entry):
    """A partition's event clock and the counts behind its reconciliation (key `clock`)."""
    max_ts: int | None
    watermark: int | None
    accepted: int  # frames the outlier guard accepted
    frames_in: int
    counted_frames: int
    late_frames: int
    rejected: dict[str, int]  # dead letters by reason
    per_set: list[tuple[int, int]]  # per granularity: (too_late, corrections)
    held: list[tuple[int | str, int, Any, int]]  # frames the guard holds: (user, ts, ref, accepted_before)
    flushed: bool = False  # since scale-out (issue 15)


class MinuteEntry(Entry):
    """An open minute's header (`open-minute/<start>`); its users are in UsersPart entries."""
    start: int
    frames: int
    reported: int


class WindowEntry(Entry):
    """A window's header (`<granularity>/<start>`), open or kept for corrections."""
    start: int
    end: int
    frames: int
    revision: int
    late_frames: int
    kept: bool


class UsersPart(Entry):
    """Part n of a minute's or window's users (`<key>/<n>`): sorted 64-bit hashes, or a sketch."""
    data: bytes


class MergerEntry(Entry):
    """The merger's state as of `offset` of the partials topic (key `merger`)."""
    offset: int
    taken: list[tuple[int, int, int, int]]  # (granularity index, start, partition, revision) of each part taken
    revisions: list[tuple[tuple[int, int], int]]  # ((granularity index, start), revision of its last record)
    marks: list[tuple[int, int | None, bool, bool]]  # Mark's fields
    waiting: list[tuple[int, int]]
    forgotten_until: int


class WindowPartEntry(Entry):
    """One part of a partition's window (partials topic, key `<granularity>:<start>:<partition>:<n>`)."""
    parts: int
    revision: int
    frames: int
    late_frames: int
    users: int
    data: bytes | None  # hashes (exact), a sketch (hll), or None (keyed: the count only)


class MarkEntry(Entry):
    """A partition's mark (partials topic, key `mark:<partition>`)."""
    watermark: int | None
    idle: bool
    flushed: bool


def encode(entry: Entry) -> bytes:
    return _encode(entry)


def decode(data: bytes, kind: type[E]) -> E:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.msgpack.Decoder(kind)
    try:
        decoded: E = decoder.decode(data)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise FormatError(_why(data, kind, exc)) from None
    return decoded


def _why(data: bytes, kind: type[Any], exc: Exception) -> str:
    try:
        version = msgspec.msgpack.decode(data)[0]
    except (msgspec.DecodeError, TypeError, ValueError, IndexError, KeyError):
        return f"not an entry of uniqcount's: {exc}"
    if version != VERSION:
        return f"entry of format version {version}; this version reads {VERSION}"
    return f"not a {kind.__name__}: {exc}"
