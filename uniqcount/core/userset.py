"""Users as the 64-bit xxh3 hashes of their uids, from the parse on; compact sets of them.

The parser hands out each frame's uid hash (core/frames.py; native/frames.c computes the same hash).
An open minute keeps its users as a Python set of those ints: the fastest to add to, about 60 bytes
a user (3 MB for 50,000 users). Once a window closes, only membership and the count are needed, so
it keeps them sorted in an array: 8 bytes a user, 400 KB for 50,000. Snapshots store every exact
set the same way, and partitions' sets merge by their hashes.

Two different uids collide with probability 2^-64 per pair, so a window of n users loses one user to a
collision with probability about n^2 / 2^65: 7e-11 for n = 50,000, and for a million windows of
50,000 users (about two years of minutes) still under 1e-4. The hash is stable across processes and
machines (unlike Python's salted `hash`), so the state can be checkpointed and merged.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left
from sys import getsizeof
from typing import Iterable, Iterator, Sized

import numpy as np
from xxhash import xxh3_64_intdigest


def uid_hash(uid: str) -> int:
    return xxh3_64_intdigest(uid.encode())


def hashes_of(uids: Iterable[str]) -> Iterator[int]:
    """uid_hash of each, at C speed (no Python call per uid): 45k users of a minute in ~6 ms."""
    return map(xxh3_64_intdigest, map(str.encode, uids))


def _ordered(hashes: Iterable[int]) -> np.ndarray:
    """Distinct hashes sorted by numpy: a minute's 45k in 4.3 ms, against 12.9 ms for sorted()."""
    ordered = np.fromiter(hashes, dtype=np.uint64, count=len(hashes) if isinstance(hashes, Sized) else -1)
    ordered.sort()
    return ordered


def sorted_array(hashes: Iterable[int]) -> array[int]:
    """Distinct hashes as a sorted array: a frozen exact set."""
    out = array("Q")
    out.frombytes(_ordered(hashes).tobytes())
    return out


def hashes_bytes(hashes: Iterable[int]) -> bytes:
    """Distinct hashes sorted, 8 bytes each: the snapshot form of an exact set."""
    return _ordered(hashes).tobytes()


PART_HASHES = 1 << 16  # most hashes in one record (state entry, partial): 512 KiB


def split_hashes(hashes: bytes) -> list[bytes]:
    """Sorted hashes (hashes_bytes) in parts of at most PART_HASHES (at least one part, maybe empty):
    no part outgrows a Kafka record."""
    step = 8 * PART_HASHES
    return [hashes[i:i + step] for i in range(0, len(hashes), step)] or [b""]


def hashes_from(data: bytes) -> array[int]:
    hashes = array("Q")
    hashes.frombytes(data)
    return hashes


class CompactUsers:
    """A set of users as sorted 64-bit hashes, plus a small set of those added after the freeze."""

    __slots__ = ("_sorted", "_added")

    def __init__(self, hashes: Iterable[int] = (), sorted_hashes: array[int] | None = None):
        """`sorted_hashes`: already sorted and unique (as `to_bytes` writes them), taken as they are."""
        if sorted_hashes is None:
            sorted_hashes = sorted_array(hashes if isinstance(hashes, set) else set(hashes))
        self._sorted = sorted_hashes
        self._added: set[int] = set()

    def add(self, h: int) -> None:
        i = bisect_left(self._sorted, h)
        if i == len(self._sorted) or self._sorted[i] != h:
            self._added.add(h)

    def hashes(self) -> Iterable[int]:
        yield from self._sorted
        yield from self._added

    def add_hashes_to(self, union: set[int]) -> None:
        union.update(self._sorted)
        union.update(self._added)

    def to_bytes(self) -> bytes:
        """Sorted hashes, 8 bytes each (hashes_bytes)."""
        return self._sorted.tobytes() if not self._added else hashes_bytes(self.hashes())

    def __len__(self) -> int:
        return len(self._sorted) + len(self._added)

    @property
    def nbytes(self) -> int:
        """Bytes held: the hash array, and the set of late additions with its int objects."""
        added = getsizeof(self._added) + sum(map(getsizeof, self._added)) if self._added else 0
        return getsizeof(self._sorted) + added
