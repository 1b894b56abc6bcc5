"""Unique-user counters of one window: exact, or approximate with Apache DataSketches' HyperLogLog.

Long windows are fed a closed minute at a time (`NewUsers`): an exact window takes the minute's uids
(a C-level set union), an HLL window takes one sketch of them, built once for every HLL window that
holds the minute. So the cost per frame does not grow with the number of granularities.

Exact counters grow with the users (8 bytes each once frozen, see userset.py): fine for a minute or
an hour, not for a year of users. An HLL sketch has a fixed size (about 2^lg_k bytes with HLL_8)
whatever the users, gives its own 95% bounds, serialises (checkpoints) and merges (partial counts of
several partitions of the same window).

Everything a counter holds can be written as bytes (`to_bytes`) and read back: exact sets as their
64-bit hashes, sketches in DataSketches' compact form. A counter read back holds hashes, not uid
strings; so that it goes on exactly as the original would, HLL sketches are fed the uids' 64-bit
hashes too, never the strings.
"""
from __future__ import annotations

import math
from array import array
from typing import Iterable, Sequence, Union, cast

from datasketches import hll_sketch, hll_union, tgt_hll_type

from uniqcount.core.userset import CompactUsers, hashes_bytes, hashes_from, hashes_of, uid_hash

DEFAULT_LG_K = 14
_STDDEVS_95 = 2  # DataSketches bounds at 2 standard deviations: about 95.4% confidence


def hll_relative_standard_error(lg_k: int) -> float:
    """1.04 / sqrt(k): the textbook HLL error for k = 2^lg_k registers (0.81% for lg_k 14)."""
    return 1.04 / math.sqrt(1 << lg_k)


class NewUsers:
    """The users of one minute, handed to every longer window that holds it: uid strings, plus the
    hashes of those counted before a restore (`restored`)."""

    __slots__ = ("uids", "lg_k", "restored", "_sketch")

    def __init__(self, uids: set[str], lg_k: int = DEFAULT_LG_K, restored: set[int] | None = None):
        self.uids = uids
        self.lg_k = lg_k
        self.restored = restored
        self._sketch: hll_sketch | None = None

    def hashes(self) -> set[int]:
        hashes = set(hashes_of(self.uids))
        return hashes | self.restored if self.restored else hashes

    def sketch(self) -> hll_sketch:
        """Built on first need, then shared by the day, week, month and year windows."""
        if self._sketch is None:
            self._sketch = sketch = hll_sketch(self.lg_k, tgt_hll_type.HLL_8)
            for h in hashes_of(self.uids):  # a user in both is counted once: a sketch takes duplicates
                sketch.update(h)
            for h in self.restored or ():
                sketch.update(h)
        return self._sketch


class ExactCounter:
    """An open exact window: the uid strings themselves (shared with the minute sets that fed them),
    or, once it holds users read back from a snapshot, their hashes."""

    __slots__ = ("uids", "hashed")
    estimate = "exact"

    def __init__(self, hashed: set[int] | None = None) -> None:
        self.uids: set[str] = set()
        self.hashed = hashed  # None: every user is in `uids`

    def _hashes(self) -> set[int]:
        if self.hashed is None:
            self.hashed, self.uids = set(hashes_of(self.uids)), set()
        return self.hashed

    def add(self, uid: str) -> None:
        if self.hashed is None:
            self.uids.add(uid)
        else:
            self.hashed.add(uid_hash(uid))

    def add_users(self, users: NewUsers) -> None:
        if self.hashed is None and not users.restored:
            self.uids.update(users.uids)
        else:
            self._hashes().update(users.hashes())

    def count(self) -> int:
        return len(self.uids) if self.hashed is None else len(self.hashed)

    def bounds(self) -> None:
        return None

    def hash_set(self) -> set[int]:
        return set(hashes_of(self.uids)) if self.hashed is None else self.hashed

    def add_hashes_to(self, union: set[int]) -> None:
        union.update(hashes_of(self.uids) if self.hashed is None else self.hashed)

    def frozen(self) -> FrozenExactCounter:
        """Closed: only membership and the count are needed from now on."""
        return FrozenExactCounter(self.uids, self.hashed or ())

    def to_bytes(self) -> bytes:
        return hashes_bytes(self.hash_set())

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
    """An HLL window. It accumulates in a DataSketches union, which takes uids and whole sketches alike."""

    __slots__ = ("union",)
    estimate = "hll"

    def __init__(self, lg_k: int = DEFAULT_LG_K, sketch: hll_sketch | None = None) -> None:
        self.union = hll_union(sketch.lg_config_k if sketch is not None else lg_k)
        if sketch is not None:
            self.union.update(sketch)

    @property
    def lg_k(self) -> int:
        return int(self.union.lg_config_k)

    def add(self, uid: str) -> None:
        self.union.update(uid_hash(uid))

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
    return FrozenExactCounter(sorted_hashes=array("Q", sorted(union)))


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
    plain = [c for c in exact if isinstance(c, ExactCounter) and c.hashed is None]
    if len(plain) == len(exact) and not any(users.restored for users in pending):
        return len(set[str]().union(*(c.uids for c in plain), *(users.uids for users in pending))), None
    union: set[int] = set()
    for users_of_part in exact:
        users_of_part.add_hashes_to(union)
    for users in pending:
        union.update(users.hashes())
    return len(union), None
