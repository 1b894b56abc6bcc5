"""Reading frames from a file or stdin: plain or gzip (told by magic bytes, not by name).

Gzip is inflated by ISA-L (`isal`) in a thread of its own, beside the parsing: 1.3 s for the
canonical 1.9 GB sample against 4.3 s with the standard gzip module. Lines are cut from blocks of
up to 256 KB by one bytes.split each, not read one at a time (7.6 s through GzipFile's line
iterator); blocks that small are still in the CPU cache when the parser reads them (consumer file
mode: ~155k frames/s with 256 KB blocks, ~120k with 4 MB).
"""
from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Iterator, Sequence

from isal import igzip_threaded
from isal.igzip_lib import IsalError

GZIP_MAGIC = b"\x1f\x8b"


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

    def numbered_batches(self, size: int = 1 << 18, limit: int | None = None
                         ) -> Iterator[tuple[Sequence[int], list[bytes]]]:
        """batches() with the line number (from 1, blank lines counted) of each line kept: a range,
        free, unless the block had blank lines."""
        remaining = limit
        first = 1
        try:
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
        except (gzip.BadGzipFile, IsalError, EOFError, OSError) as exc:  # type: ignore[misc]  # isal raises gzip's own BadGzipFile too
            raise InputError(f"{self.name}: unreadable input ({exc})") from None

    def _lines(self, size: int) -> Iterator[list[bytes]]:
        """The whole lines of each block, a line cut by the block's end joined to its rest. A block
        is what is there (read1), so a live pipe is not held back until `size` bytes came."""
        rest = b""
        while data := self.stream.read1(size):
            lines = data.split(b"\n")
            lines[0] = rest + lines[0]
            crlf = b"\r" in data or rest.endswith(b"\r")
            rest = lines.pop()
            yield [line.rstrip(b"\r") for line in lines] if crlf else lines
        if rest:
            yield [rest.rstrip(b"\r")]

    def close(self) -> None:
        if self.gzipped:
            self.stream.close()  # stops the inflating thread
        if self.raw is not sys.stdin.buffer:
            self.raw.close()
