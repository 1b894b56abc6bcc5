"""The counters' state on its way to the state topic and back: what a checkpoint writes (inside the
transaction that also holds the records, the dead letters and the offsets), and what a newly
assigned partition is restored from.

Each input partition's entries go to the same partition of the state topic, under the keys of
core/state.py, plus `offset`: the input offset the state stands at, the one committed in the same
transaction. A restore checks the two agree, so a state that is behind its offset (a commit's
markers still being written) is read again, never used. Entries that are gone (windows forgotten)
get tombstones, so the compacted topic stays the size of the state.
"""
from __future__ import annotations

from typing import Callable, Iterator

import msgspec

from uniqcount.core.merge import Partitions
from uniqcount.core.state import Snapshots, restore
from uniqcount.kafka_client.record_batches import Record

OFFSET = "offset"
MERGER = "merger"  # partition 0 also holds the merger's state (runtime/merging.py)
Entries = dict[str, bytes]


class StateMismatch(Exception):
    """The state topic and the committed offsets disagree in a way a wait does not mend."""


def offset_of(entries: Entries) -> int | None:
    data = entries.get(OFFSET)
    return None if data is None else msgspec.msgpack.decode(data)


def usable(what: str, stands_at: int | None, committed: int | None) -> str | None:
    """None when a state written at offset `stands_at` goes with the group's committed offset; why
    not when it is ahead (offsets reset by hand: counting goes on from there, with an empty state).
    Behind raises StateMismatch: the commit's markers may still be on their way, read it again."""
    if committed is None or stands_at is None or stands_at > committed:
        return (f"{what}: its state stands at offset {stands_at} but the group's committed offset is "
                f"{committed} (offsets reset by hand?): counting on from there with an empty state")
    if stands_at < committed:
        raise StateMismatch(f"{what}: the state is behind the committed offset ({stands_at} < {committed})")
    return None


class StateLog:
    def __init__(self, partitions: Callable[[], Partitions]):
        """`partitions`: the counting's current merge (it is replaced on a rewind)."""
        self.partitions = partitions
        self.snapshots: dict[int, Snapshots] = {}
        self.offsets: dict[int, int] = {}  # the offset each partition's state was written at

    def changes(self, positions: dict[int, int]) -> Iterator[tuple[int, str, bytes | None]]:
        """(partition, key, value or None for a tombstone) of everything changed since the last
        checkpoint; `positions`: the input offset each partition is at."""
        merged = self.partitions()
        for partition, counter in merged.counters.items():
            snapshots = self.snapshots.get(partition)
            if snapshots is None:
                snapshots = self.snapshots[partition] = Snapshots(counter)
            changed, dropped = snapshots.take()
            yield from ((partition, key, value) for key, value in changed.items())
            yield from ((partition, key, None) for key in dropped)
            position = positions.get(partition)
            if position is not None and position != self.offsets.get(partition):
                self.offsets[partition] = position
                yield partition, OFFSET, msgspec.msgpack.encode(position)

    def restore(self, partition: int, entries: Entries, committed: int | None) -> str | None:
        """Fill the partition's fresh counter from its entries. A state whose offset is not the
        committed one is left out: returns why (None when restored, or when there is none)."""
        merged = self.partitions()
        stands_at = offset_of(entries)
        self.forget(partition)
        counter = merged.assign(partition)
        state = {key: value for key, value in entries.items() if key not in (OFFSET, MERGER)}
        if stands_at is None and (not state or committed is None):  # nothing read yet: nothing to restore
            return None
        unusable = usable(f"partition {partition}", stands_at, committed)
        if unusable:
            return unusable
        restore(counter, state, make_ref=lambda ref: Record(*ref))
        self.snapshots[partition] = Snapshots.restored(counter, state)
        self.offsets[partition] = stands_at
        return None

    def forget(self, partition: int) -> None:
        self.snapshots.pop(partition, None)
        self.offsets.pop(partition, None)

    def reset(self) -> None:
        self.snapshots.clear()
        self.offsets.clear()
