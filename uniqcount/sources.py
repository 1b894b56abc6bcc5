"""Reading frames from a file or stdin: plain or gzip (told by magic bytes, not by name)."""
from __future__ import annotations

import gzip
import sys
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Iterator

GZIP_MAGIC = b"\x1f\x8b"


class InputError(Exception):
    """One line for the user."""


class Input:
    """Lines of a JSON Lines file, or of stdin with '-'."""

    def __init__(self, path: str):
        self.name = "stdin" if path == "-" else path
        if path == "-":
            self.raw: BinaryIO = sys.stdin.buffer
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
        self.stream: BinaryIO = gzip.GzipFile(fileobj=self.raw) if self.gzipped else self.raw
        self.blank_lines = 0

    def position(self) -> int | None:
        """Bytes of the file read so far (compressed bytes for gzip), for progress bars."""
        try:
            return self.raw.tell()
        except OSError:
            return None

    def batches(self, size: int = 10_000, limit: int | None = None) -> Iterator[list[bytes]]:
        """Lists of non-blank lines (at most `limit` in all) without line terminators; blank lines
        are skipped and counted."""
        remaining = limit
        try:
            while remaining is None or remaining > 0:
                chunk = list(islice(self.stream, size if remaining is None else min(size, remaining)))
                if not chunk:
                    return
                kept = [line.rstrip(b"\r\n") for line in chunk if line.strip()]
                self.blank_lines += len(chunk) - len(kept)
                if remaining is not None:
                    remaining -= len(kept)
                yield kept
        except (gzip.BadGzipFile, EOFError, OSError) as exc:
            raise InputError(f"{self.name}: unreadable input ({exc})") from None

    def close(self) -> None:
        if self.raw is not sys.stdin.buffer:
            self.raw.close()
