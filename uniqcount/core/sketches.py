"""Stored sketches: each final minute, hour and day as records of the compacted topic
`<OUTPUT_TOPIC>-sketches`, so that any range can be answered later by uniting them (ranges.py).
Unique counts do not add up; users do.

Per window, key `<granularity>:<start>:hll`: its users as a HyperLogLog sketch (HLL_4, ~8 KiB at
lg_k 14), and, while its end is within SKETCH_EXACT_FOR of the newest window stored and the window is
counted exactly, keys `<granularity>:<start>:exact:<n>`: its users as sorted 64-bit hashes, in parts
of at most PART_HASHES (userset.py). An exact window's sketch is made from those same hashes, so a
range that mixes exact and sketched windows unites them without counting anyone twice.

Retention is in event time, like everything else: once the newest window stored ends more than a
granularity's retention after a window's end, its records get tombstones (the broker's clock would
delete two years of history on the day it is loaded). Which windows are stored, and with how many
parts, is the ledger: a small entry of runs, written with the checkpoint that wrote the records, so
that a restart tombstones what an earlier process stored.

The records of a window are written at the checkpoint after its final record or correction, in the
same transaction: once per window per checkpoint, never per frame. Pure: results in, records out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import msgspec
from datasketches import hll_sketch, tgt_hll_type

from uniqcount.core.counters import ExactCounter, FrozenExactCounter, HllCounter
from uniqcount.core.entries import Entry, WindowPartEntry, decode, encode
from uniqcount.core.userset import hashes_from, split_hashes
from uniqcount.core.windowset import Result

SIZES = {"minute": 60, "hour": 3600, "day": 86_400}  # fixed and nested: they tile any range
HLL = "hll"
EXACT = "exact"
Record = tuple[bytes, "bytes | None"]  # (key, value); None: a tombstone


@dataclass(frozen=True)
class Keeping:
    """What is stored: seconds of event time each granularity's windows are kept, how long an exact
    window keeps its hashes (then its sketch alone), and up to how many bytes of hashes a window
    keeps them for life instead of a sketch (`small_bytes`: no more room than the sketch takes)."""
    retention: dict[str, int]
    exact_for: int
    lg_k: int
    small_bytes: int = 0


def small_bytes(lg_k: int) -> int:
    """The bytes of an HLL_4 sketch's registers at lg_k: hashes that fit there are kept instead."""
    return 1 << (lg_k - 1)


class LedgerEntry(Entry):
    """The ledger (state topic, key `sketches`): the newest end stored, and per granularity the runs
    of window starts stored (first, count), of those with exact parts (first, count, parts), and of
    the small ones, kept as hashes alone (first, count)."""
    newest: int
    stored: dict[str, list[tuple[int, int]]]
    exact: dict[str, list[tuple[int, int, int]]]
    small: dict[str, list[tuple[int, int]]] = msgspec.field(default_factory=dict)


def hll_key(granularity: str, start: int) -> bytes:
    return f"{granularity}:{start}:{HLL}".encode()


def exact_keys(granularity: str, start: int, parts: Iterable[int]) -> list[bytes]:
    return [f"{granularity}:{start}:{EXACT}:{n}".encode() for n in parts]


def sketch_of_hashes(hashes: Iterable[int], lg_k: int) -> hll_sketch:
    sketch = hll_sketch(lg_k, tgt_hll_type.HLL_4)
    for h in hashes:
        sketch.update(h)
    return sketch


def window_records(result: Result, users: int, sketch: bytes | None, parts: list[bytes]) -> list[Record]:
    """A window's records: its exact parts (sorted hashes; none beyond the horizon), then its sketch
    (none for a small window: its hashes are its record)."""
    g, start = result.granularity, result.start

    def entry(n: int, data: bytes) -> bytes:
        return encode(WindowPartEntry(n, result.revision, result.frames, result.late_frames, users, data))

    out: list[Record] = [(key, entry(len(parts), part))
                         for key, part in zip(exact_keys(g, start, range(len(parts))), parts)]
    return out if sketch is None else [*out, (hll_key(g, start), entry(1, sketch))]


class StoredWindows:
    """The writer's side: final results in, at each checkpoint the records to write and the ledger."""

    def __init__(self, keeping: Keeping):
        self.keeping = keeping
        self.pending: dict[tuple[str, int], Result] = {}
        self.stored: dict[str, set[int]] = {g: set() for g in keeping.retention}
        self.exact: dict[str, dict[int, int]] = {g: {} for g in keeping.retention}  # start -> parts
        self.small: dict[str, set[int]] = {g: set() for g in keeping.retention}  # hashes alone, for life
        self.newest = -(1 << 62)
        self.written_bytes = 0  # of the records written since the start (what the sketches cost)

    def add(self, results: Iterable[Result]) -> None:
        """Final records and corrections of the kept granularities; the latest of a window wins."""
        for result in results:
            if result.final and result.granularity in self.stored:
                self.pending[(result.granularity, result.start)] = result

    def take(self) -> list[Record]:
        """The records of the windows made final or corrected since the last take, then tombstones of
        what is now past the exact horizon or retention."""
        results = list(self.pending.values())
        self.pending.clear()
        self.newest = max([self.newest, *(r.end for r in results)])
        out = [record for r in sorted(results, key=lambda r: (r.end, r.granularity))
               if r.end > self.newest - self.keeping.retention[r.granularity] for record in self._store(r)]
        out += self._expire()
        self.written_bytes += sum(len(k) + len(v or b"") for k, v in out)
        return out

    def _store(self, result: Result) -> list[Record]:
        g, start = result.granularity, result.start
        counter = result.counter
        exact_data = counter.to_bytes() if isinstance(counter, (ExactCounter, FrozenExactCounter)) else None
        was_small = start in self.small[g]
        had = 1 if was_small else self.exact[g].pop(start, 0)
        had_sketch = start in self.stored[g] and not was_small
        self.small[g].discard(start)
        self.stored[g].add(start)
        if exact_data is not None and len(exact_data) <= self.keeping.small_bytes:
            self.small[g].add(start)
            out = window_records(result, len(exact_data) // 8, None, [exact_data])
            return [*out, *((key, None) for key in exact_keys(g, start, range(1, had))),
                    *([(hll_key(g, start), None)] if had_sketch else [])]
        if isinstance(counter, HllCounter):
            sketch = counter.union.get_result(tgt_hll_type.HLL_4)
            users = int(round(sketch.get_estimate()))
        elif exact_data is not None:
            sketch = sketch_of_hashes(hashes_from(exact_data), self.keeping.lg_k)
            users = len(exact_data) // 8
        else:
            raise TypeError(f"a stored window needs its users, not {counter!r}")
        parts = split_hashes(exact_data) if exact_data is not None and \
            result.end > self.newest - self.keeping.exact_for else []
        if parts:
            self.exact[g][start] = len(parts)
        return [*window_records(result, users, bytes(sketch.serialize_compact()), parts),
                *((key, None) for key in exact_keys(g, start, range(len(parts), had)))]

    def _expire(self) -> list[Record]:
        out: list[Record] = []
        for g, starts in self.stored.items():
            size = SIZES[g]
            exact, small = self.exact[g], self.small[g]
            for start in [s for s in exact if s + size <= self.newest - self.keeping.exact_for]:
                out += [(key, None) for key in exact_keys(g, start, range(exact.pop(start)))]
            for start in sorted(s for s in starts if s + size <= self.newest - self.keeping.retention[g]):
                starts.discard(start)
                if start in small:
                    small.discard(start)
                    out += [(key, None) for key in exact_keys(g, start, [0])]
                    continue
                out += [(key, None) for key in exact_keys(g, start, range(exact.pop(start, 0)))]
                out.append((hll_key(g, start), None))
        return out

    def entry(self) -> bytes:
        return encode(LedgerEntry(
            self.newest,
            {g: [(first, n) for first, n, _ in _runs(((s, 0) for s in starts), SIZES[g])]
             for g, starts in self.stored.items()},
            {g: _runs(exact.items(), SIZES[g]) for g, exact in self.exact.items()},
            {g: [(first, n) for first, n, _ in _runs(((s, 0) for s in small), SIZES[g])]
             for g, small in self.small.items()}))

    def restore(self, data: bytes | None) -> None:
        """As of the ledger entry `data` (None: nothing stored yet); what was pending is dropped (a
        restore redoes the work since the checkpoint)."""
        self.pending.clear()
        self.stored = {g: set() for g in self.keeping.retention}
        self.exact = {g: {} for g in self.keeping.retention}
        self.small = {g: set() for g in self.keeping.retention}
        self.newest = -(1 << 62)
        if data is None:
            return
        ledger = decode(data, LedgerEntry)
        self.newest = ledger.newest
        for g, runs in ledger.stored.items():  # a granularity no longer kept: its windows stay as they are
            if g in self.stored:
                self.stored[g].update(s for first, n in runs for s in _starts(first, n, SIZES[g]))
        for g, exact_runs in ledger.exact.items():
            if g in self.exact:
                self.exact[g].update((s, parts) for first, n, parts in exact_runs for s in _starts(first, n, SIZES[g]))
        for g, runs in ledger.small.items():
            if g in self.small:
                self.small[g].update(s for first, n in runs for s in _starts(first, n, SIZES[g]))


def _runs(items: Iterable[tuple[int, int]], step: int) -> list[tuple[int, int, int]]:
    """(start, value) pairs as runs (first, count, value) of consecutive windows with one value."""
    runs: list[tuple[int, int, int]] = []
    for start, value in sorted(items):
        if runs and runs[-1][2] == value and runs[-1][0] + runs[-1][1] * step == start:
            first, n, _ = runs[-1]
            runs[-1] = (first, n + 1, value)
        else:
            runs.append((start, 1, value))
    return runs


def _starts(first: int, n: int, step: int) -> Iterator[int]:
    return iter(range(first, first + n * step, step))
