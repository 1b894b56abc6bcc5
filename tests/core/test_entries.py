"""Entries are named, versioned structs whose bytes are those of format 1's plain lists: entries
written before the structs had names still read, and another version is a clear error."""
from __future__ import annotations

import msgspec
import pytest

from uniqcount.core.entries import (
    ClockEntry,
    FormatError,
    MarkEntry,
    MergerEntry,
    MinuteEntry,
    UsersPart,
    WindowEntry,
    WindowPartEntry,
    decode,
    encode,
)

# what format 1 wrote, field by field, as the lists of before (version first)
OLD = [
    (ClockEntry, [1, 1_700_000_100, 1_700_000_095, 12, 20, 18, 1, {"bad_json": 2}, [[0, 1], [3, 0]],
                  [["u", 1_700_009_000, [b"events", 0, 7, None, b"{}"], 11]], True]),
    (MinuteEntry, [1, 1_700_000_040, 9, 4]),
    (WindowEntry, [1, 1_700_000_040, 1_700_000_100, 9, 2, 1, True]),
    (UsersPart, [1, b"\x00" * 16]),
    (MergerEntry, [1, 88, [[0, 1_700_000_040, 1, 2]], [[[0, 1_700_000_040], 2]], [[1, None, True, False]],
                   [[0, 1_700_000_040]], 1_699_990_000]),
    (WindowPartEntry, [1, 1, 0, 9, 0, 4, None]),
    (MarkEntry, [1, 1_700_000_095, False, True]),
]


@pytest.mark.parametrize("kind, fields", OLD, ids=[kind.__name__ for kind, _ in OLD])
def test_entries_written_as_lists_read_as_named_structs_and_write_the_same_bytes(kind, fields):
    old = msgspec.msgpack.encode(fields)
    entry = decode(old, kind)
    assert encode(entry) == old
    assert msgspec.msgpack.decode(encode(entry))[0] == 1  # the version comes first


def test_fields_are_read_by_name():
    clock = decode(msgspec.msgpack.encode(OLD[0][1]), ClockEntry)
    assert (clock.watermark, clock.rejected, clock.per_set[1], clock.held[0][3]) == \
           (1_700_000_095, {"bad_json": 2}, (3, 0), 11)


def test_a_clock_written_before_flushed_existed_reads_as_not_flushed():
    fields = OLD[0][1][:-1]
    assert decode(msgspec.msgpack.encode(fields), ClockEntry).flushed is False


def test_another_version_or_no_entry_is_a_clear_format_error():
    with pytest.raises(FormatError, match="entry of format version 2; this version reads 1"):
        decode(msgspec.msgpack.encode([2, 1_700_000_040, 9, 4]), MinuteEntry)
    with pytest.raises(FormatError, match="not an entry of uniqcount's"):
        decode(b"\xff\x00junk", MinuteEntry)
    with pytest.raises(FormatError, match="not a MinuteEntry"):
        decode(msgspec.msgpack.encode([1, "x", 9, 4]), MinuteEntry)
