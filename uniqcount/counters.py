"""Approximate unique-user counters for long windows: Apache DataSketches' HyperLogLog.

Exact counters grow with the users (8 bytes each once frozen, see userset.py): fine for a minute,
not for a year of users. An HLL sketch has a fixed size (about 2^lg_k bytes with HLL_8) whatever
the users, gives its own 95% bounds, serialises (checkpoints) and merges (partial counts of several
partitions of the same window).
"""
from __future__ import annotations

import math

from datasketches import hll_sketch, hll_union, tgt_hll_type

DEFAULT_LG_K = 14
_STDDEVS_95 = 2  # DataSketches bounds at 2 standard deviations: about 95.4% confidence


def hll_relative_standard_error(lg_k: int) -> float:
    """1.04 / sqrt(k): the textbook HLL error for k = 2^lg_k registers (0.81% for lg_k 14)."""
    return 1.04 / math.sqrt(1 << lg_k)


class HllCounter:
    __slots__ = ("sketch",)

    def __init__(self, lg_k: int = DEFAULT_LG_K, sketch: hll_sketch | None = None) -> None:
        self.sketch = sketch if sketch is not None else hll_sketch(lg_k, tgt_hll_type.HLL_8)

    @property
    def lg_k(self) -> int:
        return self.sketch.lg_config_k

    def add(self, uid: str) -> None:
        self.sketch.update(uid)

    def count(self) -> int:
        return round(self.sketch.get_estimate())

    def bounds(self) -> tuple[int, int]:
        return (math.floor(self.sketch.get_lower_bound(_STDDEVS_95)),
                math.ceil(self.sketch.get_upper_bound(_STDDEVS_95)))

    @property
    def nbytes(self) -> int:
        return self.sketch.get_compact_serialization_bytes()

    def serialize(self) -> bytes:
        return self.sketch.serialize_compact()

    @classmethod
    def deserialize(cls, data: bytes) -> HllCounter:
        return cls(sketch=hll_sketch.deserialize(data))

    def merge(self, other: HllCounter) -> HllCounter:
        """The union of two windows' users (e.g. the same window on two partitions)."""
        union = hll_union(max(self.lg_k, other.lg_k))
        union.update(self.sketch)
        union.update(other.sketch)
        return HllCounter(sketch=union.get_result(tgt_hll_type.HLL_8))
