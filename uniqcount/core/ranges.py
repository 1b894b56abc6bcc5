"""Any range [from, to) answered from the stored windows (sketches.py): the fewest that tile it,
days in the middle, then hours, then minutes at the edges, united. Exact when an exact tiling covers
as much of the range as any tiling does (each tile's hashes, united); otherwise the HyperLogLog union
of every tile's sketch, with its 95% bounds. What no stored window covers (not final yet, past
retention, never seen) is listed as missing, and the answer is then `complete: false`: the users of
the covered part, never users from outside the range. Pure: records in, answers out.
"""
from __future__ import annotations

import math
from bisect import bisect_left, insort
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np
from datasketches import hll_sketch, hll_union

from uniqcount.core.counters import DEFAULT_LG_K
from uniqcount.core.entries import FormatError, WindowPartEntry, decode
from uniqcount.core.records import iso_utc
from uniqcount.core.sketches import EXACT, HLL, SIZES, sketch_of_hashes

_STDDEVS_95 = 2
Tile = tuple[str, int]  # (granularity, start)


@dataclass
class Stored:
    """One stored window as read back."""
    revision: int
    frames: int
    users: int
    sketch: bytes | None = None  # HLL_4, compact
    exact: dict[int, tuple[int, bytes]] = field(default_factory=dict)  # part -> (revision, hashes)
    exact_parts: int = 0
    _hll: hll_sketch | None = None

    @property
    def has_hashes(self) -> bool:
        """Every exact part of its latest revision is in."""
        return self.exact_parts > 0 and all(
            (part := self.exact.get(n)) is not None and part[0] == self.revision for n in range(self.exact_parts))

    def hashes(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.exact[n][1] for n in range(self.exact_parts)), dtype=np.uint64)

    @property
    def sketched(self) -> bool:
        """It can stand in a HyperLogLog union: a sketch, or hashes to make one of."""
        return self.sketch is not None or self.has_hashes

    def hll(self, lg_k: int) -> hll_sketch:
        """Its sketch; a small window's, made from its hashes (at `lg_k`) the first time."""
        if self._hll is None:
            self._hll = hll_sketch.deserialize(self.sketch) if self.sketch is not None else \
                sketch_of_hashes(self.hashes().tolist(), lg_k)
        return self._hll


def instant(text: str) -> int:
    """Epoch seconds from epoch seconds or an ISO 8601 time (UTC unless it says otherwise)."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValueError(f"{text!r} is no time: give epoch seconds or ISO 8601 (2016-07-11T13:39:00Z)") from None
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp())


class StoredIndex:
    """The sketches topic's latest records, by granularity and start."""

    def __init__(self) -> None:
        self.windows: dict[str, dict[int, Stored]] = {g: {} for g in SIZES}
        self.starts: dict[str, list[int]] = {g: [] for g in SIZES}  # sorted
        self.unreadable = 0

    def add(self, key: bytes | str, value: bytes | None) -> None:
        """One record (a tombstone when value is None); one this version cannot read is counted."""
        try:
            granularity, start_text, kind, *part = (key.decode() if isinstance(key, bytes) else key).split(":")
            start = int(start_text)
            if granularity not in SIZES or kind not in (HLL, EXACT):
                raise ValueError(f"unknown key {key!r}")
            entry = decode(value, WindowPartEntry) if value is not None else None
            n = int(part[0]) if kind == EXACT else 0
        except (UnicodeDecodeError, ValueError, IndexError, FormatError):
            self.unreadable += 1
            return
        windows = self.windows[granularity]
        if entry is None:
            self._forget(granularity, start, kind, n)
            return
        stored = windows.get(start)
        if stored is None:
            stored = windows[start] = Stored(entry.revision, entry.frames, entry.users)
            insort(self.starts[granularity], start)
        if entry.revision >= stored.revision:
            stored.revision, stored.frames, stored.users = entry.revision, entry.frames, entry.users
        if kind == HLL:
            stored.sketch = entry.data
        else:
            stored.exact[n] = (entry.revision, entry.data or b"")
            stored.exact_parts = entry.parts
        stored._hll = None

    def _forget(self, granularity: str, start: int, kind: str, n: int) -> None:
        stored = self.windows[granularity].get(start)
        if stored is None:
            return
        if kind == EXACT:
            stored.exact.pop(n, None)
        else:
            stored.sketch = None
        stored._hll = None
        if stored.sketch is None and not stored.exact:
            del self.windows[granularity][start]
            starts = self.starts[granularity]
            i = bisect_left(starts, start)
            if i < len(starts) and starts[i] == start:
                del starts[i]

    def __len__(self) -> int:
        return sum(len(w) for w in self.windows.values())

    def any_in(self, granularity: str, start: int, end: int) -> bool:
        """A window of this granularity starts in [start, end)."""
        starts = self.starts[granularity]
        i = bisect_left(starts, start)
        return i < len(starts) and starts[i] < end


def tile(index: StoredIndex, start: int, end: int, usable: Callable[[str, int], bool]
         ) -> tuple[list[Tile], list[tuple[int, int]]]:
    """The fewest usable windows that lie in [start, end), largest first, and the spans left over."""
    tiles: list[Tile] = []
    missing: list[tuple[int, int]] = []
    levels = [g for g in SIZES if index.starts[g]][::-1]  # day, hour, minute: those stored

    def cover(a: int, b: int, level: int) -> None:
        if a >= b:
            return
        if level == len(levels):
            _gap(missing, a, b)
            return
        g = levels[level]
        size = SIZES[g]
        first, last = -(-a // size) * size, b // size * size
        if first >= last or not index.any_in(g, first, last):
            cover(a, b, level + 1)
            return
        cover(a, first, level + 1)
        for s in range(first, last, size):
            if usable(g, s):
                tiles.append((g, s))
            else:
                cover(s, s + size, level + 1)
        cover(last, b, level + 1)

    cover(start, end, 0)
    return tiles, missing


def _gap(missing: list[tuple[int, int]], a: int, b: int) -> None:
    if missing and missing[-1][1] == a:
        missing[-1] = (missing[-1][0], b)
    else:
        missing.append((a, b))


def answer(index: StoredIndex, start: int, end: int, lg_k: int = DEFAULT_LG_K) -> dict[str, Any]:
    """The unique users of [start, end) as one record (docs/QUERIES.md)."""
    windows = index.windows
    tiles, missing = tile(index, start, end, lambda g, s: s in windows[g] and windows[g][s].sketched)
    exact_tiles, exact_missing = tile(index, start, end,
                                      lambda g, s: s in windows[g] and windows[g][s].has_hashes)
    record: dict[str, Any] = {"from": start, "to": end, "from_iso": iso_utc(start), "to_iso": iso_utc(end)}
    if exact_missing == missing:
        stored = [windows[g][s] for g, s in exact_tiles]
        record.update(unique_users=_distinct([w.hashes() for w in stored]), estimate="exact")
        tiles = exact_tiles
    else:
        stored = [windows[g][s] for g, s in tiles]
        union = hll_union(max([lg_k, *(w.hll(lg_k).lg_config_k for w in stored)]))
        for window in stored:
            union.update(window.hll(lg_k))
        record.update(unique_users=int(round(union.get_estimate())), estimate="hll",
                      lower_bound=math.floor(union.get_lower_bound(_STDDEVS_95)),
                      upper_bound=math.ceil(union.get_upper_bound(_STDDEVS_95)))
    record.update(frames=sum(w.frames for w in stored), complete=not missing,
                  missing=[[a, b] for a, b in missing], windows=[f"{g}:{s}" for g, s in sorted(tiles, key=_by_start)])
    return record


def _by_start(tile: Tile) -> tuple[int, int]:
    return tile[1], -SIZES[tile[0]]


def _distinct(hashes: list[np.ndarray]) -> int:
    """Distinct values of several arrays of hashes (each sorted and unique already): one sort, adjacent
    values compared. The stable sort (timsort) merges the sorted runs: 108 ms for 60 arrays of 45,000
    here, against 290 ms for the default quicksort and ~15x that for numpy's unique."""
    if len(hashes) == 1:
        return int(hashes[0].size)
    if not hashes:
        return 0
    joined = np.sort(np.concatenate(hashes), kind="stable")
    return int(1 + np.count_nonzero(joined[1:] != joined[:-1])) if joined.size else 0
