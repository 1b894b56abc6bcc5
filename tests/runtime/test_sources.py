"""Input: lines cut from blocks, whatever block boundaries, terminators and blank lines; gzip or not."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.test_frames import HOSTILE_PIECES, REAL
from uniqcount.core.frames import parse_batch, resolved
from uniqcount.runtime.sources import Input, LineColumns, scan_lines

line = st.text(alphabet="ab{}\" \x00é", max_size=12).map(str.encode)
blank = st.sampled_from([b"", b"  ", b"\t"])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(line | blank, st.sampled_from([b"\n", b"\r\n"]))), st.booleans(),
       st.integers(1, 40), st.booleans(), st.none() | st.integers(0, 20))
def test_lines_whatever_the_blocks(tmp_path_factory, lines, last_terminated, size, gzipped, limit):
    data = b"".join(text + end for text, end in lines)
    if lines and not last_terminated:
        data = data[:-len(lines[-1][1])]
        if not lines[-1][0]:  # an empty last line without its terminator is no line at all
            lines = lines[:-1]
    path = Path(tmp_path_factory.mktemp("in")) / "frames"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    kept = [text for text, _ in lines if text.strip()]
    numbered = [(number, text) for number, (text, _) in enumerate(lines, 1) if text.strip()]
    source = Input(str(path))
    got = [(n, frame) for numbers, batch in source.numbered_batches(size=size, limit=limit)
           for n, frame in zip(numbers, batch, strict=True)]
    source.close()
    assert source.gzipped == gzipped
    assert [frame for _, frame in got] == kept[:limit]
    assert got == numbered[:limit]
    if limit is None:
        assert source.blank_lines == len(lines) - len(kept)


needs_native = pytest.mark.skipif(scan_lines is None and not os.environ.get("CI"),
                                  reason="native/ is not built (pip install ./native); CI builds it")


def lines_of(data: bytes) -> tuple[list[bytes], int]:
    """(the non-blank lines, the blank ones' count) as `_lines` and `numbered_batches` cut them."""
    pieces = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        pieces.pop()
    stripped = [piece.rstrip(b"\r") for piece in pieces]
    kept = [line for line in stripped if line and not line.isspace()]
    return kept, len(stripped) - len(kept)


def same_verdicts(columns: LineColumns, kept: list[bytes]) -> None:
    expected = parse_batch(kept)
    got = resolved(columns.users, columns.times, columns.unsure, columns.value)
    assert (list(got.users), list(got.times), got.bad) == (list(expected.users), list(expected.times), expected.bad)


@needs_native
@settings(max_examples=300, deadline=None)
@given(head=st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")),
       block=st.lists(st.binary(max_size=40) | st.sampled_from([*HOSTILE_PIECES, *REAL[:3], b"\n", b"\r\n", b" \t\x0b\x0c",
                                                                 b"\r"]), max_size=12).map(b"".join))
def test_the_line_scan_cuts_and_reads_lines_as_the_python_path_does(head, block):
    """native/lines.c on arbitrary bytes: the lines `_lines` cuts from head + block (the line they
    share copied whole), the blank ones counted, each kept line's verdict and user what
    parse_batch gives."""
    columns = LineColumns(head, memoryview(block))
    kept, blank = lines_of(head + block)
    assert [columns.value(i) for i in range(len(columns))] == kept
    assert columns.blank == blank and columns.value_bytes == sum(map(len, kept))
    same_verdicts(columns, kept)


@needs_native
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(line | blank | st.sampled_from(REAL[:2]), st.sampled_from([b"\n", b"\r\n"]))),
       st.integers(1, 400), st.booleans())
def test_frames_come_as_the_batches_lines_whatever_the_blocks(tmp_path_factory, lines, size, gzipped):
    """File mode's compiled path (frames: LineColumns scanned by threads) gives the lines, the blank
    count and the verdicts of the Python path (batches), block by block the same."""
    data = b"".join(text + end for text, end in lines)
    path = Path(tmp_path_factory.mktemp("in")) / "frames"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    python, compiled = Input(str(path)), Input(str(path))
    batches = list(python.batches(size=size))
    parts = [part for part in compiled.frames(size=size) if len(part)]
    python.close()
    compiled.close()
    assert all(type(part) is LineColumns for part in parts)
    assert [[part.value(i) for i in range(len(part))] for part in parts] == batches
    assert compiled.blank_lines == python.blank_lines
    for part, batch in zip(parts, batches):
        same_verdicts(part, batch)
