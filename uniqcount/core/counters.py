"""Unique-user counters of one window: exact, or approximate with Apache DataSketches' HyperLogLog.

Users are 64-bit xxh3 hashes of their uids from the parse on (userset.py): the parser hands them out,
open minutes and windows hold them, snapshots store them, partitions' counters unite them.

Long windows are fed a closed minute at a time (`NewUsers`): an exact window takes the minute's
hashes (a C-level set union), an HLL window takes one sketch of them, built once for every HLL window
that holds the minute. So the cost per frame does not grow with the number of granularities.

Exact counters grow with the users (8 bytes each once frozen, see userset.py): fine for a minute or
an hour, not for a year of users. An HLL sketch has a fixed size (about 2^lg_k bytes with HLL_8)
whatever the users, gives its own 95% bounds, serialises (checkpoints) and merges (partial counts of
several partitions of the same window).

Everything a counter holds can be written as bytes (`to_bytes`) and read back: exact sets as their
64-bit hashes, sketches in DataSketches' compact form; HLL sketches are fed the same hashes.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence, Union, cast

from datasketches import hll_sketch, hll_union, tgt_hll_type

from uniqcount.core.userset import CompactUsers, hashes_bytes, hashes_from, sorted_array

DEFAULT_LG_K = 14
_STDDEVS_95 = 2  # DataSketches bounds at 2 standard deviations: about 95.4% confidence


def hll_relative_standard_error(lg_k: int) -> float:
    """1.04 / sqrt(k): the textbook HLL error for k = 2^lg_k registers (0.81% for lg_k 14)."""
    return 1.04 / math.sqrt(1 << lg_k)


class NewUsers:
    """The users (hashes) of one minute, handed to every longer window that holds it."""

    __slots__ = ("hashes", "lg_k", "_sketch")

    def __init__(self, hashes: set[int], lg_k: int = DEFAULT_LG_K):
        self.hashes = hashes
        self.lg_k = lg_k
        self._sketch: hll_sketch | None = None

    def sketch(self) -> hll_sketch:
        """Built on first need, then shared by the day, week, month and year windows."""
        if self._sketch is None:
            self._sketch = sketch = hll_sketch(self.lg_k, tgt_hll_type.HLL_8)
            for h in self.hashes:
                sketch.update(h)
        return self._sketch


class ExactCounter:
    """An open exact window: its users' hashes, shared with nothing (a minute's set is copied in)."""

    __slots__ = ("hashed",)
    estimate = "exact"

    def __init__(self, hashed: set[int] | None = None) -> None:
        self.hashed: set[int] = set() if hashed is None else hashed

    def add(self, user: int) -> None:
        self.hashed.add(user)

    def add_users(self, users: NewUsers) -> None:
        self.hashed.update(users.hashes)

    def count(self) -> int:
        return len(self.hashed)

    def bounds(self) -> None:
        return None

    def hash_set(self) -> set[int]:
        return self.hashed

    def add_hashes_to(self, union: set[int]) -> None:
        union.update(self.hashed)

    def frozen(self) -> FrozenExactCounter:
        """Closed: only membership and the count are needed from now on."""
        return FrozenExactCounter(self.hashed)

    def to_bytes(self) -> bytes:
        return hashes_bytes(self.hashed)

    @classmethod
    def from_bytes(cls, data: bytes) -> ExactCounter:
        return cls(set(hashes_from(data)))


class FrozenExactCounter(CompactUsers):
    """A closed exact window kept for late frames: 8 bytes a user."""

    __slots__ = ()
    estimate = "exact"

    def count(self) -> int:
        return len(self)

    def bounds(self) -> None:
        return None

    def frozen(self) -> FrozenExactCounter:
        return self

    @classmethod
    def from_bytes(cls, data: bytes) -> FrozenExactCounter:
        """From `to_bytes`' sorted hashes, without sorting them again."""
        return cls(sorted_hashes=hashes_from(data))


class HllCounter:
    """An HLL window. It accumulates in a DataSketches union, which takes hashes and whole sketches alike."""

    __slots__ = ("union",)
    estimate = "hll"

    def __init__(self, lg_k: int = DEFAULT_LG_K, sketch: hll_sketch | None = None) -> None:
        self.union = hll_union(sketch.lg_config_k if sketch is not None else lg_k)
        if sketch is not None:
            self.union.update(sketch)

    @property
    def lg_k(self) -> int:
        return int(self.union.lg_config_k)

    def add(self, user: int) -> None:
        self.union.update(user)

    def add_users(self, users: NewUsers) -> None:
        self.union.update(users.sketch())

    def count(self) -> int:
        return int(round(self.union.get_estimate()))

    def bounds(self) -> tuple[int, int]:
        return (math.floor(self.union.get_lower_bound(_STDDEVS_95)),
                math.ceil(self.union.get_upper_bound(_STDDEVS_95)))

    def frozen(self) -> HllCounter:
        return self

    def sketch(self) -> hll_sketch:
        return self.union.get_result(tgt_hll_type.HLL_8)

    @property
    def nbytes(self) -> int:
        return int(self.sketch().get_compact_serialization_bytes())

    def to_bytes(self) -> bytes:
        return bytes(self.sketch().serialize_compact())

    @classmethod
    def from_bytes(cls, data: bytes) -> HllCounter:
        return cls(sketch=hll_sketch.deserialize(data))

    def merge(self, other: HllCounter) -> HllCounter:
        """The union of two windows' users (e.g. the same window on two partitions)."""
        merged = HllCounter(max(self.lg_k, other.lg_k))
        merged.union.update(self.sketch())
        merged.union.update(other.sketch())
        return merged


UserCounter = Union[ExactCounter, FrozenExactCounter, HllCounter]  # the users of one window


def union_counter(counters: Sequence[UserCounter]) -> UserCounter:
    """The users of several parts of one window (partitions') as one counter: for what is stored."""
    if isinstance(counters[0], HllCounter):
        sketch = HllCounter(max(cast(HllCounter, c).lg_k for c in counters))
        for counter in counters:
            sketch.union.update(cast(HllCounter, counter).sketch())
        return sketch
    union: set[int] = set()
    for users_of_part in cast("Sequence[ExactCounter | FrozenExactCounter]", counters):
        users_of_part.add_hashes_to(union)
    return FrozenExactCounter(sorted_hashes=sorted_array(union))


def union_of(counters: Sequence[UserCounter], pending: Iterable[NewUsers] = ()) -> tuple[int, tuple[int, int] | None]:
    """Users and bounds of the union of one window's counters (several partitions' parts) and of
    minutes not closed yet, leaving them all unchanged."""
    pending = list(pending)
    if isinstance(counters[0], HllCounter):  # a window's counters are of one kind
        sketch = cast(HllCounter, union_counter(counters))
        for users in pending:
            sketch.union.update(users.sketch())
        return sketch.count(), sketch.bounds()
    exact = cast("Sequence[ExactCounter | FrozenExactCounter]", counters)
    union: set[int] = set()
    for users_of_part in exact:
        users_of_part.add_hashes_to(union)
    for users in pending:
        union.update(users.hashes)
    return len(union), None
