"""The state as a value: a partition's counter written as entries (key -> bytes) and read back.

Entries are what a changelog (a compacted topic) keeps, one per key: the clock (watermark, outlier
guard with its held frames, the counts behind the reconciliation line), and per open minute and per
window (open, or kept for corrections) a small header plus its users in parts. `Snapshots.take`
hands back only the entries that changed since the previous snapshot and the keys that were dropped
since, so a checkpoint costs what changed, not what is held. Exact sets are stored as sorted 64-bit
hashes (8 bytes a user) in parts of at most PART_HASHES (512 KiB), sketches in DataSketches' compact
form (at most 2 MiB, at lg_k 21): no entry outgrows a Kafka record. Every entry is MessagePack that
starts with the format's version.

Refs of held frames are stored as they are (bytes, numbers, tuples of them); `restore` turns the
tuples back into the edge's own type with `make_ref`.
"""
from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping, NamedTuple

from uniqcount.core.counters import ExactCounter, FrozenExactCounter, HllCounter, UserCounter
from uniqcount.core.entries import ClockEntry, FormatError, MinuteEntry, UsersPart, WindowEntry, decode, encode
from uniqcount.core.minutes import OpenMinute
from uniqcount.core.outliers import Held
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.userset import hashes_bytes, hashes_from, split_hashes, uid_hash
from uniqcount.core.windowset import Window, WindowSet

CLOCK = "clock"


class Changes(NamedTuple):
    """What a snapshot hands back: entries written since the last one, and keys gone since."""
    changed: dict[str, bytes]
    dropped: list[str]


def _clock(counter: PartitionCounter) -> bytes:
    guard = counter.guard
    return encode(ClockEntry(
        counter.max_ts, counter.watermark, guard.accepted, counter.frames_in, counter.counted_frames,
        counter.late_frames, dict(counter.rejected), [(s.too_late, s.corrections) for s in counter.sets],
        [(h.user, h.ts, h.ref, h.accepted_before) for h in guard.held], counter.flushed))


class Growing(NamedTuple):
    """Users that only grow (an open minute or exact window): each snapshot writes the new ones."""
    users: set[int]


class Whole(NamedTuple):
    """Users written whole when they change (a closed exact window's hashes, a sketch), in parts."""
    version: Any
    write: Callable[[], list[bytes]]


class Item(NamedTuple):
    """One minute or window: its header (small, rewritten on change) and its users (in parts)."""
    version: Any
    header: Callable[[], bytes]
    users: Growing | Whole


def _items(counter: PartitionCounter) -> dict[str, Item]:
    items = {}
    for start, minute in counter.minutes.items():
        items[f"open-minute/{start}"] = Item((minute.frames, minute.reported), partial(
            encode, MinuteEntry(minute.start, minute.frames, minute.reported)), Growing(minute.users))
    for windows in counter.sets:
        for kept, group in ((False, windows.open), (True, windows.kept)):
            for start, window in group.items():
                version = (window.frames, window.revision, window.late_frames, kept)
                items[f"{windows.name}/{start}"] = Item(version, partial(encode, WindowEntry(
                    window.start, window.end, window.frames, window.revision, window.late_frames, kept)),
                    _users(window.counter, version))
    return items


def _users(counter: UserCounter, version: Any) -> Growing | Whole:
    if isinstance(counter, ExactCounter):
        return Growing(counter.hashed)
    if isinstance(counter, FrozenExactCounter):
        return Whole(version, lambda: split_hashes(counter.to_bytes()))
    return Whole(version, lambda: [counter.to_bytes()])


@dataclass
class _Written:
    """What the users parts of one item hold so far."""
    parts: int = 0
    users: set[int] | None = None  # Growing: the users written
    version: Any = None  # Whole: the version whose bytes are in part 0


@dataclass
class Snapshots:
    """Incremental snapshots of one partition's counter. An item's users go in parts under
    `<key>/<n>`: a growing set writes only the users new since the last snapshot (an open hour
    costs the users of the last interval, not the hour's), a whole one rewrites part 0."""
    counter: PartitionCounter
    headers: dict[str, Any] = field(default_factory=dict)
    users: dict[str, _Written] = field(default_factory=dict)
    clock: bytes = b""

    def take(self) -> Changes:
        items = _items(self.counter)
        changed: dict[str, bytes] = {}
        dropped: list[str] = []
        for key, item in items.items():
            if self.headers.get(key) != item.version:
                changed[key] = item.header()
                self.headers[key] = item.version
            self._write_users(key, item.users, changed, dropped)
        clock = _clock(self.counter)
        if clock != self.clock:
            changed[CLOCK] = self.clock = clock
        for key in [k for k in self.headers if k not in items]:
            del self.headers[key]
            dropped += [key, *self._drop_parts(key)]
        # a part written again from 0 (a kept window reopened: its users grow again) is no tombstone: the
        # changelog applies tombstones after the values, and would lose it
        return Changes(changed, [key for key in dropped if key not in changed])

    def _drop_parts(self, key: str) -> list[str]:
        written = self.users.pop(key, None)
        return [f"{key}/{n}" for n in range(written.parts)] if written else []

    def _write_users(self, key: str, users: Growing | Whole, changed: dict[str, bytes], dropped: list[str]) -> None:
        written = self.users.get(key)
        if isinstance(users, Whole):
            if written is None or written.users is not None or written.version != users.version:
                parts = users.write()
                dropped += [part for part in self._drop_parts(key) if int(part.rpartition("/")[2]) >= len(parts)]
                for n, part in enumerate(parts):
                    changed[f"{key}/{n}"] = encode(UsersPart(part))
                self.users[key] = _Written(len(parts), version=users.version)
            return
        if written is None or written.users is None:
            dropped += self._drop_parts(key)  # new, or its kind changed: written again from part 0
            written = self.users[key] = _Written(0, set())
        seen = written.users
        assert seen is not None
        if len(users.users) == len(seen):  # sets that only grow: the same size, the same users
            return
        new = users.users - seen
        for part in split_hashes(hashes_bytes(new)) if new else ():
            changed[f"{key}/{written.parts}"] = encode(UsersPart(part))
            written.parts += 1
        seen |= new

    def full(self) -> dict[str, bytes]:
        """Every entry, as a fresh changelog would hold them (the base of later `take`s)."""
        self.headers, self.users, self.clock = {}, {}, b""
        return self.take().changed

    @classmethod
    def restored(cls, counter: PartitionCounter, entries: Mapping[str, bytes]) -> Snapshots:
        """The snapshots of a counter just restored from `entries`: the next `take` writes only
        what changes from here, and drops every part the changelog holds."""
        snapshots = cls(counter, clock=_clock(counter))
        parts = Tally(key.rpartition("/")[0] for key in entries if key.count("/") == 2)
        for key, item in _items(counter).items():
            snapshots.headers[key] = item.version
            users = item.users
            snapshots.users[key] = _Written(parts[key], version=users.version) if isinstance(users, Whole) \
                else _Written(parts[key], set(users.users))
        return snapshots


def restore(counter: PartitionCounter, entries: Mapping[str, bytes],
            make_ref: Callable[[Any], Any] = lambda r: r) -> PartitionCounter:
    """Fill a fresh counter (built with the same settings) from a snapshot's entries."""
    sets = {windows.name: windows for windows in counter.sets}
    parts: dict[str, list[bytes]] = {}
    for key in sorted((k for k in entries if k.count("/") == 2), key=_part_order):  # an item's users
        parts.setdefault(key.rpartition("/")[0], []).append(entries[key])
    for key, data in entries.items():
        name = key.split("/")[0]
        if key == CLOCK:
            _restore_clock(counter, decode(data, ClockEntry), make_ref)
            continue
        if key.count("/") == 2:
            continue
        users = [decode(part, UsersPart).data for part in parts.get(key, [])]
        if name == "open-minute":
            minute = decode(data, MinuteEntry)
            counter.minutes[minute.start] = OpenMinute(minute.start, {h for part in users for h in hashes_from(part)},
                                                       minute.frames, minute.reported)
        elif name in sets:
            _restore_window(sets[name], decode(data, WindowEntry), users)
        else:
            raise FormatError(f"state entry {key!r} is of a granularity this counter does not count")
    counter.reindex()
    return counter


def _part_order(key: str) -> tuple[str, int]:
    item, _, n = key.rpartition("/")
    return item, int(n)


def _restore_clock(counter: PartitionCounter, clock: ClockEntry, make_ref: Callable[[Any], Any]) -> None:
    counter.max_ts, counter.watermark, counter.guard.accepted = clock.max_ts, clock.watermark, clock.accepted
    counter.frames_in, counter.counted_frames, counter.late_frames = clock.frames_in, clock.counted_frames, clock.late_frames
    counter.flushed = clock.flushed
    counter.rejected.update(clock.rejected)
    for windows, (too_late, corrections) in zip(counter.sets, clock.per_set):
        windows.too_late, windows.corrections = too_late, corrections
    counter.guard.held = [Held(uid_hash(user) if isinstance(user, str) else user, ts, make_ref(ref), before)
                          for user, ts, ref, before in clock.held]  # a str: a uid, as written before 2026-12


def _restore_window(windows: WindowSet, header: WindowEntry, users: list[bytes]) -> None:
    if not windows.exact:
        counter: UserCounter = HllCounter.from_bytes(users[0])
    elif header.kept:
        counter = FrozenExactCounter.from_bytes(b"".join(users))
    else:
        counter = ExactCounter({h for part in users for h in hashes_from(part)})
    window = Window(header.start, header.end, counter, header.frames, header.revision, header.late_frames)
    (windows.kept if header.kept else windows.open)[header.start] = window
