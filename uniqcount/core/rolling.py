"""Rolling windows: the unique users of the last 24 h, 7 d, 30 d (DAU, WAU, MAU), published at the end
of every final minute, corrected when a late frame changes them.

A window of the last L seconds ending at E holds the minutes that start in [E - L, E). Uniting 43,200
minute sketches for every minute of a 30-day window is out of the question, and keeping them costs
350 MB. Instead each minute's users become HyperLogLog registers (the register of each 64-bit user
hash is its top HLL_LG_K bits, the value the position of the first 1 bit in the rest), and the
registers of all settled minutes are kept in one table: for each register and value, the latest
minute that set it. A window's register is then the largest value set by a minute inside the window:
one comparison over the table per window, whatever its length (the sliding HyperLogLog of Chabchoub
and Hébrail). Minutes that a late frame may still correct (LATE_RETENTION) stay apart, a register
array each, until they settle; a correction recomputes the published windows that hold its minute.
The estimate and its 95% bounds are Apache DataSketches' own: the registers are handed to it as an
HLL_8 sketch image (its documented serial format) marked out of order, so that it uses its composite
estimator, as for any union.

Pure: final minute results in, rolling results and a checkpoint entry out.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from datasketches import hll_sketch

from uniqcount.core.counters import ExactCounter, FrozenExactCounter
from uniqcount.core.entries import Entry, decode, encode
from uniqcount.core.windowset import Result

MINUTE = 60
NEVER = np.iinfo(np.int32).min  # no settled minute set this value of this register
_STDDEVS_95 = 2
_HLL8_HEADER = struct.Struct("<BBBBBBBBdddii")  # DataSketches HLL serial format, HLL mode
_OUT_OF_ORDER = 16


def registers(hashes: np.ndarray, lg_k: int) -> np.ndarray:
    """HLL registers (uint8, 2^lg_k) of 64-bit hashes: register = top lg_k bits, value = 1 + the
    leading zeros of the other 64 - lg_k bits (65 - lg_k when they are all 0)."""
    rest_bits = 64 - lg_k
    slots = (hashes >> np.uint64(rest_bits)).astype(np.intp)
    rest = (hashes & np.uint64((1 << rest_bits) - 1)).astype(np.float64)  # < 2^53: exact
    values = (rest_bits + 1 - np.frexp(rest)[1]).astype(np.uint8)  # frexp(0) gives 0: all zeros
    out = np.zeros(1 << lg_k, dtype=np.uint8)
    np.maximum.at(out, slots, values)
    return out


_INVERSE = np.ldexp(1.0, -np.arange(66))  # 2^-value


def estimate(regs: np.ndarray, lg_k: int) -> tuple[int, int, int]:
    """(estimate, lower, upper 95% bounds) of registers, by DataSketches' composite estimator."""
    counts = np.bincount(regs, minlength=66)
    if counts[0] == regs.size:
        return 0, 0, 0
    header = _HLL8_HEADER.pack(10, 1, 7, lg_k, 0, _OUT_OF_ORDER, 0, 2 | (2 << 2), 0.0,
                               float(counts[:32] @ _INVERSE[:32]), float(counts[32:] @ _INVERSE[32:len(counts)]),
                               int(counts[0]), 0)
    sketch = hll_sketch.deserialize(header + regs.tobytes())
    return (int(round(sketch.get_estimate())), math.floor(sketch.get_lower_bound(_STDDEVS_95)),
            math.ceil(sketch.get_upper_bound(_STDDEVS_95)))


def since(table: np.ndarray, first: int) -> np.ndarray:
    """Per row of a (register, value) -> latest minute table: the largest value set at minute `first`
    or later (0: none)."""
    mask = table >= first
    return np.where(mask.any(axis=1), mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1), 0).astype(np.uint8)


def minute_hashes(result: Result) -> np.ndarray:
    counter = result.counter
    if not isinstance(counter, (ExactCounter, FrozenExactCounter)):
        raise TypeError(f"a rolling window needs each minute's users, not {counter!r}")
    return np.frombuffer(counter.to_bytes(), dtype=np.uint64)


class RollingEntry(Entry):
    """The checkpoint (state topic, key `rolling`): the settled table, the minutes not settled, and
    what was published of the windows that may still be corrected."""
    newest: int
    settled_until: int
    seen: bytes  # int32 minute numbers, (2^lg_k, 66 - lg_k)
    recent: list[tuple[int, bytes]]  # minute start, registers
    top: int  # the highest minute number in the ring
    minutes: bytes  # int64 (frames, late frames) per slot of the ring
    published: list[tuple[int, int, int, int, int]]  # length, end, revision, users, frames


@dataclass
class _Published:
    revision: int
    users: int
    frames: int


class RollingWindows:
    def __init__(self, lengths: dict[str, int], lg_k: int, settle_after: int):
        """`lengths`: seconds by name (`24h`: the records' granularity is `rolling_24h`);
        `settle_after`: event time after a minute's end past which no correction of it comes."""
        self.lengths = sorted(lengths.values())
        self.names = {length: f"rolling_{name}" for name, length in lengths.items()}
        self.lg_k = lg_k
        self.settle_after = settle_after
        self.ring = (max(self.lengths, default=0) + settle_after) // MINUTE + 2
        self.restore(None)

    def restore(self, data: bytes | None) -> None:
        """As of the entry `data` (None: nothing seen)."""
        values = 66 - self.lg_k
        self.seen = np.full((1 << self.lg_k, values), NEVER, dtype=np.int32)
        self.newest = self.settled_until = NEVER
        self.recent: dict[int, np.ndarray] = {}
        self.top = NEVER
        self.minutes = np.zeros((2, self.ring), dtype=np.int64)  # frames, late frames of minute number % ring
        self.published: dict[tuple[int, int], _Published] = {}
        self.changed = False
        if data is not None:
            entry = decode(data, RollingEntry)
            self.newest, self.settled_until, self.top = entry.newest, entry.settled_until, entry.top
            self.seen = np.frombuffer(entry.seen, dtype=np.int32).reshape(1 << self.lg_k, values).copy()
            self.recent = {start: np.frombuffer(regs, dtype=np.uint8) for start, regs in entry.recent}
            self.minutes = np.frombuffer(entry.minutes, dtype=np.int64).reshape(2, self.ring).copy()
            self.published = {(length, end): _Published(revision, users, frames)
                              for length, end, revision, users, frames in entry.published}
        self.latest = self.seen.copy()  # settled and recent minutes: the windows at the head
        for start, regs in self.recent.items():
            self._set(self.latest, start, regs)
        self.heads: dict[int, tuple[int, np.ndarray]] = {}  # length -> first minute, registers since
        self.cells = np.arange(1 << self.lg_k) * values  # of each row's value 0 in the flat table

    def entry(self) -> bytes | None:
        """The checkpoint entry, or None when nothing changed since the last one."""
        if not self.changed:
            return None
        self.changed = False
        return encode(RollingEntry(
            self.newest, self.settled_until, self.seen.tobytes(),
            [(start, regs.tobytes()) for start, regs in sorted(self.recent.items())], self.top,
            self.minutes.tobytes(),
            [(length, end, p.revision, p.users, p.frames) for (length, end), p in sorted(self.published.items())]))

    def add(self, results: Iterable[Result]) -> list[Result]:
        """The rolling results the final minutes among `results` lead to: the windows ending with
        each minute not published yet (computed in order, before a later minute takes the place of
        an earlier one in the ring), then corrections of the published ones holding a minute."""
        out: list[Result | None] = []
        touched: list[int] = []  # minutes of windows published before
        for result in sorted((r for r in results if r.granularity == "minute" and r.final), key=lambda r: r.start):
            self.changed = True
            self._ingest(result, registers(minute_hashes(result), self.lg_k))
            if result.end > self.newest:
                self.newest = result.end
                out += [self._window(length, result.end, self._head(length, result.end)) for length in self.lengths]
                continue
            touched.append(result.start)
            if (self.lengths[0], result.end) not in self.published and result.end >= self.settled_until:
                out += [self._window(length, result.end) for length in self.lengths]
        self._forget()
        out += [self._window(length, end) for (length, end) in sorted(self.published)
                if any(end - length <= start < end for start in touched)]
        return [result for result in out if result is not None]

    def _ingest(self, result: Result, regs: np.ndarray) -> None:
        number = result.start // MINUTE
        if number > self.top:  # the slots of the minutes skipped held minutes a ring ago
            skipped = np.arange(max(self.top + 1, number - self.ring + 1), number + 1) % self.ring
            self.minutes[:, skipped] = 0
            self.top = number
        if number > self.top - self.ring:
            self.minutes[:, number % self.ring] = (result.frames, result.late_frames)
        if result.start + MINUTE <= self.settled_until:
            self._set(self.seen, result.start, regs)
        else:
            self.recent[result.start] = regs
        self._set(self.latest, result.start, regs)
        for first, head in self.heads.values():
            if number >= first:
                np.maximum(head, regs, out=head)

    def _head(self, length: int, end: int) -> np.ndarray:
        """The registers of the window of `length` ending at the newest minute's end: those of the
        window before, moved on (what a minute that left held is looked up again, row by row)."""
        first = (end - length) // MINUTE
        before = self.heads.get(length)
        if before is None or before[0] > first:
            head = since(self.latest, first)
        else:
            head = before[1]
            rows = np.flatnonzero((self.latest.ravel().take(self.cells + head) < first) & (head > 0))
            if rows.size:
                head[rows] = since(self.latest[rows], first)
        self.heads[length] = (first, head)
        return head

    def _window(self, length: int, end: int, regs: np.ndarray | None = None) -> Result | None:
        """The window's result, from `regs` or from the settled table and the minutes since; None
        for a correction that changes neither its users nor its frames."""
        start = end - length
        if regs is None:
            regs = since(self.seen, start // MINUTE)
            inside = [r for s, r in self.recent.items() if start <= s < end]
            if inside:
                regs = np.maximum(regs, np.max(inside, axis=0))
        users, lower, upper = estimate(regs, self.lg_k)
        frames, late = self._sums(start // MINUTE, end // MINUTE)
        before = self.published.get((length, end))
        if before is not None and (before.users, before.frames) == (users, frames):
            return None
        revision = 0 if before is None else before.revision + 1
        self.published[(length, end)] = _Published(revision, users, frames)
        return Result(self.names[length], start, end, users, frames, True, revision, late, "hll", (lower, upper))

    def _sums(self, first: int, stop: int) -> tuple[int, int]:
        """Frames and late frames of the minutes numbered [first, stop), all within the ring."""
        a, b = first % self.ring, stop % self.ring
        parts = [self.minutes[:, a:b]] if a < b else [self.minutes[:, a:], self.minutes[:, :b]]
        frames, late = (int(sum(int(part[i].sum()) for part in parts)) for i in (0, 1))
        return frames, late

    @staticmethod
    def _set(table: np.ndarray, start: int, regs: np.ndarray) -> None:
        rows = np.nonzero(regs)[0]
        cells = table[rows, regs[rows]]
        table[rows, regs[rows]] = np.maximum(cells, start // MINUTE)

    def _forget(self) -> None:
        """Minutes past correction join the table; what no window can need any more goes."""
        self.settled_until = max(self.settled_until, self.newest - self.settle_after)
        for start in [s for s in self.recent if s + MINUTE <= self.settled_until]:
            self._set(self.seen, start, self.recent.pop(start))
        for key in [k for k in self.published if k[1] < self.settled_until]:
            del self.published[key]
