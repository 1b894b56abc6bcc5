"""Unique-user counters of one window: exact, or approximate with Apache DataSketches' HyperLogLog.

Long windows are fed a closed minute at a time (`NewUsers`): an exact window takes the minute's uids
(a C-level set union), an HLL window takes one sketch of them, built once for every HLL window that
holds the minute. So the cost per frame does not grow with the number of granularities.

Exact counters grow with the users (8 bytes each once frozen, see userset.py): fine for a minute or
an hour, not for a year of users. An HLL sketch has a fixed size (about 2^lg_k bytes with HLL_8)
whatever the users, gives its own 95% bounds, serialises (checkpoints) and merges (partial counts of
several partitions of the same window).
"""
from __future__ import annotations

import math
from typing import Iterable

from datasketches import hll_sketch, hll_union, tgt_hll_type

from uniqcount.core.userset import CompactUsers

DEFAULT_LG_K = 14
_STDDEVS_95 = 2  # DataSketches bounds at 2 standard deviations: about 95.4% confidence


def hll_relative_standard_error(lg_k: int) -> float:
    """1.04 / sqrt(k): the textbook HLL error for k = 2^lg_k registers (0.81% for lg_k 14)."""
    return 1.04 / math.sqrt(1 << lg_k)


class NewUsers:
    """The users of one closed minute, handed to every longer window that holds it."""

    __slots__ = ("uids", "lg_k", "_sketch")

    def __init__(self, uids: set[str], lg_k: int = DEFAULT_LG_K):
        self.uids = uids
        self.lg_k = lg_k
        self._sketch: hll_sketch | None = None

    def sketch(self) -> hll_sketch:
        """Built on first need, then shared by the day, week, month and year windows."""
        if self._sketch is None:
            self._sketch = hll_sketch(self.lg_k, tgt_hll_type.HLL_8)
            for uid in self.uids:
                self._sketch.update(uid)
        return self._sketch


class ExactCounter:
    """An open exact window: the uid strings themselves (shared with the minute sets that fed them)."""

    __slots__ = ("uids",)
    estimate = "exact"

    def __init__(self) -> None:
        self.uids: set[str] = set()

    def add(self, uid: str) -> None:
        self.uids.add(uid)

    def add_users(self, users: NewUsers) -> None:
        self.uids.update(users.uids)

    def count(self) -> int:
        return len(self.uids)

    def bounds(self) -> None:
        return None

    def peek(self, pending: Iterable[set[str]]) -> tuple[int, None]:
        """The count with the uids of minutes not closed yet, leaving the window unchanged."""
        return len(self.uids.union(*pending)), None

    def frozen(self) -> FrozenExactCounter:
        """Closed: only membership and the count are needed from now on."""
        return FrozenExactCounter(self.uids)


class FrozenExactCounter(CompactUsers):
    """A closed exact window kept for late frames: 8 bytes a user."""

    __slots__ = ()
    estimate = "exact"

    def count(self) -> int:
        return len(self)

    def bounds(self) -> None:
        return None


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
        return self.union.lg_config_k

    def add(self, uid: str) -> None:
        self.union.update(uid)

    def add_users(self, users: NewUsers) -> None:
        self.union.update(users.sketch())

    def count(self) -> int:
        return round(self.union.get_estimate())

    def bounds(self) -> tuple[int, int]:
        return (math.floor(self.union.get_lower_bound(_STDDEVS_95)),
                math.ceil(self.union.get_upper_bound(_STDDEVS_95)))

    def peek(self, pending: Iterable[set[str]]) -> tuple[int, tuple[int, int]]:
        """The estimate and bounds with the uids of minutes not closed yet, leaving the window unchanged."""
        copy = HllCounter(sketch=self.sketch())
        for uids in pending:
            for uid in uids:
                copy.add(uid)
        return copy.count(), copy.bounds()

    def frozen(self) -> HllCounter:
        return self

    def sketch(self) -> hll_sketch:
        return self.union.get_result(tgt_hll_type.HLL_8)

    @property
    def nbytes(self) -> int:
        return self.sketch().get_compact_serialization_bytes()

    def serialize(self) -> bytes:
        return self.sketch().serialize_compact()

    @classmethod
    def deserialize(cls, data: bytes) -> HllCounter:
        return cls(sketch=hll_sketch.deserialize(data))

    def merge(self, other: HllCounter) -> HllCounter:
        """The union of two windows' users (e.g. the same window on two partitions)."""
        merged = HllCounter(max(self.lg_k, other.lg_k))
        merged.union.update(self.sketch())
        merged.union.update(other.sketch())
        return merged
