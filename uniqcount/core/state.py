"""The state as a value: a partition's counter written as entries (key -> bytes) and read back.

Entries are what a changelog (a compacted topic) keeps, one per key: the clock (watermark, outlier
guard with its held frames, the counts behind the reconciliation line), one per open minute, one per
window open or kept for corrections. `Snapshots.take` hands back only the entries that changed since
the previous snapshot and the keys that were dropped since, so a checkpoint costs what changed, not
what is held. Exact sets are stored as sorted 64-bit hashes (8 bytes a user), sketches in
DataSketches' compact form; every entry is MessagePack that starts with the format's version.

Refs of held frames and resume points are stored as they are (bytes, numbers, tuples of them);
`restore` turns the tuples back into the edge's own type with `make_ref` / `make_resume`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

import msgspec

from uniqcount.core.counters import ExactCounter, FrozenExactCounter, HllCounter
from uniqcount.core.merge import Partitions
from uniqcount.core.outliers import Held
from uniqcount.core.partition import OpenMinute, PartitionCounter
from uniqcount.core.userset import hashes_bytes, hashes_from, uid_hash
from uniqcount.core.windowset import Window

VERSION = 1
CLOCK = "clock"
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class FormatError(ValueError):
    """An entry this version cannot read (another format version, or not an entry at all)."""


class Changes(NamedTuple):
    """What a snapshot hands back: entries written since the last one, and keys gone since."""
    changed: dict[str, bytes]
    dropped: list[str]


def _entry(*fields: Any) -> bytes:
    return _encode([VERSION, *fields])


def _fields(data: bytes) -> list[Any]:
    try:
        version, *fields = _decode(data)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise FormatError(f"not a state entry: {exc}") from None
    if version != VERSION:
        raise FormatError(f"state entry of format version {version}; this version reads {VERSION}")
    return fields


def _minute_key(start: int) -> str:
    return f"open-minute/{start}"


def _window_key(name: str, start: int) -> str:
    return f"{name}/{start}"


def _clock(counter: PartitionCounter) -> bytes:
    guard = counter.guard
    return _entry(counter.max_ts, counter.watermark, counter.done_until, guard.accepted,
                  counter.counted_frames, counter.late_frames, counter.replayed, dict(counter.rejected),
                  [[s.too_late, s.corrections] for s in counter.sets],
                  [[h.uid, h.ts, h.ref, h.resume_from, h.accepted_before] for h in guard.held])


def _minute(minute: OpenMinute) -> bytes:
    hashes = set(map(uid_hash, minute.users)) | (minute.restored or set())
    return _entry(minute.start, minute.frames, minute.reported, minute.resume_from, hashes_bytes(hashes))


def _window(window: Window, kept: bool) -> bytes:
    return _entry(window.start, window.end, window.frames, window.revision, window.late_frames, kept,
                  window.resume_from, window.counter.to_bytes())


def _versions(counter: PartitionCounter) -> dict[str, tuple[Any, Callable[[], bytes]]]:
    """Every entry's key, what tells whether it changed, and how to write it."""
    entries: dict[str, tuple[Any, Callable[[], bytes]]] = {}
    for start, minute in counter.minutes.items():
        entries[_minute_key(start)] = (minute.frames, minute.reported), lambda m=minute: _minute(m)
    for windows in counter.sets:
        for kept, group in ((False, windows.open), (True, windows.kept)):
            for start, window in group.items():
                entries[_window_key(windows.name, start)] = (
                    (window.frames, window.revision, window.late_frames, kept), lambda w=window, k=kept: _window(w, k))
    return entries


@dataclass
class Snapshots:
    """Incremental snapshots of one partition's counter: what each entry was when last written."""
    counter: PartitionCounter
    written: dict[str, Any] = field(default_factory=dict)
    clock: bytes = b""

    def take(self) -> Changes:
        versions = _versions(self.counter)
        changed = {key: write() for key, (version, write) in versions.items()
                   if self.written.get(key, ()) != version}
        clock = _clock(self.counter)
        if clock != self.clock:
            changed[CLOCK] = self.clock = clock
        dropped = [key for key in self.written if key not in versions]
        self.written = {key: version for key, (version, _) in versions.items()}
        return Changes(changed, dropped)

    def full(self) -> dict[str, bytes]:
        """Every entry, as a fresh changelog would hold them (the base of later `take`s)."""
        self.written, self.clock = {}, b""
        return self.take().changed


def restore(counter: PartitionCounter, entries: Mapping[str, bytes], make_ref: Callable[[Any], Any] = lambda r: r,
            make_resume: Callable[[Any], Any] = lambda r: r) -> PartitionCounter:
    """Fill a fresh counter (built with the same settings) from a snapshot's entries."""
    sets = {windows.name: windows for windows in counter.sets}
    for key, data in entries.items():
        fields = _fields(data)
        if key == CLOCK:
            _restore_clock(counter, fields, make_ref, make_resume)
            continue
        name, _, _ = key.partition("/")
        if name == "open-minute":
            start, frames, reported, resume, hashes = fields
            counter.minutes[start] = OpenMinute(start, make_resume(resume), set(), frames, reported,
                                                set(hashes_from(hashes)))
        elif name in sets:
            _restore_window(sets[name], fields, make_resume)
        else:
            raise FormatError(f"state entry {key!r} is of a granularity this counter does not count")
    counter.reindex()
    return counter


def _restore_clock(counter: PartitionCounter, fields: list[Any], make_ref: Callable[[Any], Any],
                   make_resume: Callable[[Any], Any]) -> None:
    (counter.max_ts, counter.watermark, counter.done_until, counter.guard.accepted, counter.counted_frames,
     counter.late_frames, counter.replayed, rejected, per_set, held) = fields
    counter.rejected.update(rejected)
    for windows, (too_late, corrections) in zip(counter.sets, per_set):
        windows.too_late, windows.corrections = too_late, corrections
    counter.guard.held = [Held(uid, ts, make_ref(ref), make_resume(resume), before)
                          for uid, ts, ref, resume, before in held]


def _restore_window(windows: Any, fields: list[Any], make_resume: Callable[[Any], Any]) -> None:
    start, end, frames, revision, late_frames, kept, resume, data = fields
    if not windows.exact:
        counter: Any = HllCounter.from_bytes(data)
    else:
        counter = FrozenExactCounter.from_bytes(data) if kept else ExactCounter.from_bytes(data)
    window = Window(start, end, make_resume(resume), counter, frames, revision, late_frames)
    (windows.kept if kept else windows.open)[start] = window


MERGE = "merge"


def merge_entry(partitions: Partitions) -> bytes:
    """What the merge of partitions adds to their states: revisions of windows already final,
    windows waiting for the slowest partition, idle partitions, the partial scope."""
    return _entry(sorted(partitions.revisions.items()), sorted(partitions.waiting.items()),
                  sorted(partitions.idle), partitions.scope)


def restore_merge(partitions: Partitions, data: bytes) -> Partitions:
    """After every partition's counter was restored."""
    revisions, waiting, idle, scope = _fields(data)
    partitions.revisions = {tuple(key): revision for key, revision in revisions}
    partitions.waiting = {tuple(key): end for key, end in waiting}
    partitions.idle = set(idle)
    partitions.scope = None if scope is None else tuple(scope)
    return partitions
