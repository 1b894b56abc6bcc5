"""Reading frames from a file or stdin: plain or gzip (told by magic bytes, not by name).

Gzip is inflated by ISA-L (`isal`) in a thread of its own, beside the parsing: 1.3 s for the
canonical 1.9 GB sample against 4.3 s with the standard gzip module. Blocks of up to 256 KB are read
at a time, not lines (7.6 s through GzipFile's line iterator); blocks that small are still in the
CPU cache when the parser reads them (consumer file mode: ~155k frames/s with 256 KB blocks, ~120k
with 4 MB). Where uniqcount_native is built, `frames` hands each block's whole lines to two threads
that cut and scan them in one C call without the GIL (`LineColumns`), AHEAD blocks before the one
being counted; otherwise the lines are cut by one bytes.split a block and parsed on the main thread.
"""
from __future__ import annotations

import gzip
import io
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence, Union

from isal import igzip_threaded
from isal.igzip_lib import IsalError

try:  # the compiled line scanner (native/lines.c, built by pip from requirements.txt)
    from uniqcount_native import scan_lines
except ImportError:
    scan_lines = None

GZIP_MAGIC = b"\x1f\x8b"
AHEAD = 4  # blocks being scanned beyond the one being counted
_SCANNERS = ThreadPoolExecutor(2, thread_name_prefix="uniqcount-lines")


class LineColumns:
    """The whole lines of a block (after the end of the block before) as columns (native/lines.c:
    scan_lines), each non-blank line's user and ts found in the same call; `value` gives a line
    (the one the two blocks share is `first`), as a line the scan left to Python (`unsure`) needs."""

    __slots__ = ("block", "first", "values", "users", "times", "unsure", "blank", "value_bytes")

    def __init__(self, head: bytes, block: memoryview | bytes):
        values, users, times, self.unsure, self.blank, self.value_bytes, self.first = scan_lines(head, block)
        self.block = block
        self.values = memoryview(values).cast("q")
        self.users, self.times = memoryview(users).cast("Q"), memoryview(times).cast("q")

    def __len__(self) -> int:
        return len(self.users)

    def ref(self, i: int) -> bytes:
        """What a dead letter or a held frame of line i is made from: the line."""
        return self.value(i)

    def value(self, i: int) -> bytes:
        start, length = self.values[2 * i], self.values[2 * i + 1]
        return bytes(self.block[start:start + length]) if start >= 0 else self.first[:length]


class InputError(Exception):
    """One line for the user."""


class Input:
    """Lines of a JSON Lines file, or of stdin with '-'."""

    def __init__(self, path: str):
        self.name = "stdin" if path == "-" else path
        if path == "-":
            self.raw: io.BufferedReader = sys.stdin.buffer  # type: ignore[assignment]  # a BufferedReader
            self.size: int | None = None
        else:
            try:
                self.raw = open(path, "rb")
            except FileNotFoundError:
                raise InputError(f"input not found: {path}") from None
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from None
            self.size = Path(path).stat().st_size
        self.gzipped = self.raw.peek(2)[:2] == GZIP_MAGIC
        self.stream: io.BufferedIOBase = igzip_threaded.open(self.raw, "rb") if self.gzipped else self.raw  # type: ignore[no-untyped-call]
        self.blank_lines = 0

    def position(self) -> int | None:
        """Bytes of the file read so far (compressed bytes for gzip), for progress bars."""
        try:
            return self.raw.tell()
        except OSError:
            return None

    def batches(self, size: int = 1 << 18, limit: int | None = None) -> Iterator[list[bytes]]:
        """Lists of the non-blank lines (at most `limit` in all) of each block of up to `size` bytes,
        without line terminators; blank lines are skipped and counted."""
        for _, kept in self.numbered_batches(size, limit):
            yield kept

    def frames(self, size: int = 1 << 18) -> Iterator[Union[LineColumns, list[bytes]]]:
        """Each block's non-blank lines: as LineColumns where uniqcount_native is built, else as
        batches() gives them."""
        if scan_lines is None:
            yield from self.batches(size)
            return
        ahead: deque[Future[LineColumns]] = deque()
        for head, data, end in self._blocks(size):
            ahead.append(_SCANNERS.submit(LineColumns, head, memoryview(data)[:end]))
            if len(ahead) > AHEAD:
                yield self._counted(ahead.popleft())
        while ahead:
            yield self._counted(ahead.popleft())

    def _counted(self, scanning: Future[LineColumns]) -> LineColumns:
        columns = scanning.result()
        self.blank_lines += columns.blank
        return columns

    def _blocks(self, size: int) -> Iterator[tuple[bytes, bytes, int]]:
        """(the end of the blocks before, cut inside a line; a block; where its last whole line ends)
        for each block with a newline, then (the rest, b"", 0) for a last line without one. A block
        is what is there (read1), so a live pipe is not held back until `size` bytes came; the line
        two blocks share is joined by the reader (`_lines`, or native/lines.c for LineColumns)."""
        rest = b""
        try:
            while data := self.stream.read1(size):
                end = data.rfind(b"\n") + 1
                if not end:
                    rest += data
                    continue
                yield rest, data, end
                rest = data[end:]
        except (gzip.BadGzipFile, IsalError, EOFError, OSError) as exc:  # type: ignore[misc]  # isal raises gzip's own BadGzipFile too
            raise InputError(f"{self.name}: unreadable input ({exc})") from None
        if rest:
            yield rest, b"", 0

    def numbered_batches(self, size: int = 1 << 18, limit: int | None = None
                         ) -> Iterator[tuple[Sequence[int], list[bytes]]]:
        """batches() with the line number (from 1, blank lines counted) of each line kept: a range,
        free, unless the block had blank lines."""
        remaining = limit
        first = 1
        for lines in self._lines(size):
            kept = [line for line in lines if line and not line.isspace()]
            numbers: Sequence[int] = range(first, first + len(lines))
            if len(kept) < len(lines):
                self.blank_lines += len(lines) - len(kept)
                numbers = [n for n, line in zip(numbers, lines) if line and not line.isspace()]
            first += len(lines)
            if remaining is not None:
                kept, numbers = kept[:remaining], numbers[:remaining]
                remaining -= len(kept)
            if kept:
                yield numbers, kept
            if remaining == 0:
                return

    def _lines(self, size: int) -> Iterator[list[bytes]]:
        """The whole lines of each block, the line cut by the block before joined whole."""
        for head, data, _ in self._blocks(size):
            lines = data.split(b"\n")
            lines.pop()  # what follows the last newline: the next block's head
            lines = [head + lines[0], *lines[1:]] if lines else [head]
            yield [line.rstrip(b"\r") for line in lines] if b"\r" in data or head.endswith(b"\r") else lines

    def close(self) -> None:
        if self.gzipped:
            self.stream.close()  # stops the inflating thread
        if self.raw is not sys.stdin.buffer:
            self.raw.close()
