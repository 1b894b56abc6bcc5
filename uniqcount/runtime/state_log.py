"""The state topic's rules, shared by the tasks that write to it (count_task.py, merger_task.py): what
a checkpoint writes beside the entries (inside the transaction that also holds the records, the
dead letters and the offsets), and what a restore accepts.

Each input partition's entries go to the same partition of the state topic, under the keys of
core/state.py, plus `offset`: the input offset the state stands at, the one committed in the same
transaction. A restore checks the two agree, so a state that is behind its offset (a commit's
markers still being written) is read again, never used. Entries that are gone (windows forgotten)
get tombstones, so the compacted topic stays the size of the state.
"""
from __future__ import annotations

import msgspec

OFFSET = "offset"
MERGER = "merger"  # partition 0 also holds the merger's state (merger_task.py)
SKETCHES = "sketches"  # and the ledger of the stored sketches (published.py)
ROLLING = "rolling"  # and the rolling windows (published.py)
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
