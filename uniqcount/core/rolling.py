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

import heapq
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


Pairs = tuple[np.ndarray, np.ndarray]  # the registers a minute set (intp) and their values (uint8)


def register_pairs(hashes: np.ndarray, lg_k: int) -> Pairs:
    """The HLL registers 64-bit hashes set, once each, with their largest value: register = top lg_k
    bits, value = 1 + the leading zeros of the other 64 - lg_k bits (65 - lg_k when all are 0)."""
    rest_bits = 64 - lg_k
    slots = (hashes >> np.uint64(rest_bits)).astype(np.intp)
    rest = (hashes & np.uint64((1 << rest_bits) - 1)).astype(np.float64)  # < 2^53: exact
    values = (rest_bits + 1 - np.frexp(rest)[1]).astype(np.uint8)  # frexp(0) gives 0: all zeros
    order = np.lexsort((values, slots))  # by register, then value: the last of each register is its largest
    slots, values = slots[order], values[order]
    last = np.append(slots[1:] != slots[:-1], True) if slots.size else np.zeros(0, dtype=bool)
    return slots[last], values[last]


def registers(hashes: np.ndarray, lg_k: int) -> np.ndarray:
    """The whole register array (uint8, 2^lg_k) of 64-bit hashes."""
    return dense(register_pairs(hashes, lg_k), lg_k)


def dense(pairs: Pairs, lg_k: int) -> np.ndarray:
    out = np.zeros(1 << lg_k, dtype=np.uint8)
    out[pairs[0]] = pairs[1]
    return out


_INVERSE = np.ldexp(1.0, -np.arange(66))  # 2^-value


def estimate(regs: np.ndarray, lg_k: int, counts: np.ndarray | None = None) -> tuple[int, int, int]:
    """(estimate, lower, upper 95% bounds) of registers, by DataSketches' composite estimator;
    `counts`: how many registers hold each value, when known."""
    if counts is None:
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


class Head:
    """The window of one length ending at the newest minute, kept as it moves on: its registers,
    how many hold each value, its frames, and, by minute, the registers whose value was last set
    then (they may drop when that minute leaves; looked at again only then)."""

    def __init__(self, latest: np.ndarray, first: int, frames: tuple[int, int]):
        self.first = first
        self.regs = since(latest, first)
        self.counts = np.bincount(self.regs, minlength=66)
        self.frames, self.late = frames
        self.expiring: dict[int, list[np.ndarray]] = {}
        self.minutes: list[int] = []  # a heap of the keys of expiring
        rows = np.flatnonzero(self.regs)
        self._expire_at(latest, rows)

    def _expire_at(self, latest: np.ndarray, rows: np.ndarray) -> None:
        if not rows.size:
            return
        at = latest[rows, self.regs[rows]]
        for minute in np.unique(at).tolist():
            if minute not in self.expiring:
                self.expiring[minute] = []
                heapq.heappush(self.minutes, minute)
            self.expiring[minute].append(rows[at == minute])

    def enter(self, latest: np.ndarray, pairs: Pairs) -> None:
        """A minute inside the window set these registers (`latest` already says so)."""
        slots, values = pairs
        held = self.regs[slots]
        rows, values = slots[values >= held], values[values >= held]
        raised = values > self.regs[rows]
        np.subtract.at(self.counts, self.regs[rows[raised]], 1)
        np.add.at(self.counts, values[raised], 1)
        self.regs[rows[raised]] = values[raised]
        self._expire_at(latest, rows)

    def move(self, latest: np.ndarray, first: int) -> None:
        """On to the window starting at minute `first` (later than its own first)."""
        self.first = first
        while self.minutes and self.minutes[0] < first:
            rows = np.unique(np.concatenate(self.expiring.pop(heapq.heappop(self.minutes))))
            rows = rows[(self.regs[rows] > 0) & (latest[rows, self.regs[rows]] < first)]
            if not rows.size:
                continue
            np.subtract.at(self.counts, self.regs[rows], 1)
            self.regs[rows] = since(latest[rows], first)
            np.add.at(self.counts, self.regs[rows], 1)
            self._expire_at(latest, rows[self.regs[rows] > 0])


class RollingEntry(Entry):
    """The checkpoint (state topic, key `rolling`): the settled table, the minutes not settled, and
    what was published of the windows that may still be corrected."""
    newest: int
    settled_until: int
    seen: bytes  # int32 minute numbers, (2^lg_k, 66 - lg_k)
    recent: list[tuple[int, bytes, bytes]]  # minute start, registers set (int32), their values
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
        self.recent: dict[int, Pairs] = {}
        self.top = NEVER
        self.minutes = np.zeros((2, self.ring), dtype=np.int64)  # frames, late frames of minute number % ring
        self.published: dict[tuple[int, int], _Published] = {}
        self.changed = False
        if data is not None:
            entry = decode(data, RollingEntry)
            self.newest, self.settled_until, self.top = entry.newest, entry.settled_until, entry.top
            self.seen = np.frombuffer(entry.seen, dtype=np.int32).reshape(1 << self.lg_k, values).copy()
            self.recent = {start: (np.frombuffer(slots, dtype=np.int32).astype(np.intp), np.frombuffer(vals, np.uint8))
                           for start, slots, vals in entry.recent}
            self.minutes = np.frombuffer(entry.minutes, dtype=np.int64).reshape(2, self.ring).copy()
            self.published = {(length, end): _Published(revision, users, frames)
                              for length, end, revision, users, frames in entry.published}
        self.latest = self.seen.copy()  # settled and recent minutes: the windows at the head
        for start, pairs in self.recent.items():
            self._set(self.latest, start, pairs)
        self.heads: dict[int, Head] = {}

    def entry(self) -> bytes | None:
        """The checkpoint entry, or None when nothing changed since the last one."""
        if not self.changed:
            return None
        self.changed = False
        return encode(RollingEntry(
            self.newest, self.settled_until, self.seen.tobytes(),
            [(start, slots.astype(np.int32).tobytes(), vals.tobytes())
             for start, (slots, vals) in sorted(self.recent.items())], self.top,
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
            self._ingest(result, register_pairs(minute_hashes(result), self.lg_k))
            if result.end > self.newest:
                self.newest = result.end
                out += [self._head(length, result.end) for length in self.lengths]
                continue
            touched.append(result.start)
            if (self.lengths[0], result.end) not in self.published and result.end >= self.settled_until:
                out += [self._window(length, result.end) for length in self.lengths]
        self._forget()
        out += [self._window(length, end) for (length, end) in sorted(self.published)
                if any(end - length <= start < end for start in touched)]
        return [result for result in out if result is not None]

    def _ingest(self, result: Result, pairs: Pairs) -> None:
        number = result.start // MINUTE
        if number > self.top:  # the slots of the minutes skipped held minutes a ring ago
            skipped = np.arange(max(self.top + 1, number - self.ring + 1), number + 1) % self.ring
            self.minutes[:, skipped] = 0
            self.top = number
        if number > self.top - self.ring:
            slot = number % self.ring
            frames, late = result.frames - int(self.minutes[0, slot]), result.late_frames - int(self.minutes[1, slot])
            self.minutes[:, slot] = (result.frames, result.late_frames)
            for head in self.heads.values():
                if number >= head.first:
                    head.frames += frames
                    head.late += late
        if result.start + MINUTE <= self.settled_until:
            self._set(self.seen, result.start, pairs)
        else:
            self.recent[result.start] = pairs
        self._set(self.latest, result.start, pairs)
        for head in self.heads.values():
            if number >= head.first:
                head.enter(self.latest, pairs)

    def _head(self, length: int, end: int) -> Result | None:
        """The window of `length` ending at the newest minute's end: the one before, moved on."""
        first, stop = (end - length) // MINUTE, end // MINUTE
        head = self.heads.get(length)
        if head is None or head.first > first or first - head.first >= length // MINUTE:  # none, or all new
            head = self.heads[length] = Head(self.latest, first, self._sums(first, stop))
        elif head.first < first:
            left = self._sums(head.first, min(first, stop))
            head.frames, head.late = head.frames - left[0], head.late - left[1]
            head.move(self.latest, first)
        return self._result(length, end, head.regs, (head.frames, head.late), head.counts)

    def _window(self, length: int, end: int) -> Result | None:
        """A window that is not the newest, from the settled table and the minutes since."""
        start = end - length
        regs = since(self.seen, start // MINUTE)
        for minute, (slots, values) in self.recent.items():
            if start <= minute < end:
                regs[slots] = np.maximum(regs[slots], values)
        return self._result(length, end, regs, self._sums(start // MINUTE, end // MINUTE))

    def _result(self, length: int, end: int, regs: np.ndarray, sums: tuple[int, int],
                counts: np.ndarray | None = None) -> Result | None:
        """None for a window published with these users and frames already."""
        users, lower, upper = estimate(regs, self.lg_k, counts)
        frames, late = sums
        before = self.published.get((length, end))
        if before is not None and (before.users, before.frames) == (users, frames):
            return None
        revision = 0 if before is None else before.revision + 1
        self.published[(length, end)] = _Published(revision, users, frames)
        return Result(self.names[length], end - length, end, users, frames, True, revision, late, "hll",
                      (lower, upper))

    def _sums(self, first: int, stop: int) -> tuple[int, int]:
        """Frames and late frames of the minutes numbered [first, stop), all within the ring."""
        if stop <= first:
            return 0, 0
        a, b = first % self.ring, stop % self.ring
        parts = [self.minutes[:, a:b]] if a < b else [self.minutes[:, a:], self.minutes[:, :b]]
        return (int(sum(int(part[0].sum()) for part in parts)), int(sum(int(part[1].sum()) for part in parts)))

    @staticmethod
    def _set(table: np.ndarray, start: int, pairs: Pairs) -> None:
        slots, values = pairs
        table[slots, values] = np.maximum(table[slots, values], start // MINUTE)

    def _forget(self) -> None:
        """Minutes past correction join the table; what no window can need any more goes."""
        self.settled_until = max(self.settled_until, self.newest - self.settle_after)
        for start in [s for s in self.recent if s + MINUTE <= self.settled_until]:
            self._set(self.seen, start, self.recent.pop(start))
        for key in [k for k in self.published if k[1] < self.settled_until]:
            del self.published[key]
