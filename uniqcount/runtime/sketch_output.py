"""The stored sketches (core/sketches.py) of the task that publishes the records: the single input
partition's, or the merger's of a topic of several. Their records go to `<OUTPUT_TOPIC>-sketches`
with each checkpoint, and their ledger to the state topic's partition 0 in the same transaction, so
that a restore of that task picks up where the last checkpoint left them."""
from __future__ import annotations

from uniqcount.core.sketches import StoredWindows
from uniqcount.runtime.committer import Change
from uniqcount.runtime.state_log import SKETCHES, Entries

LEDGER_PARTITION = 0  # of the state topic, under the key SKETCHES


class SketchOutput:
    def __init__(self, stored: StoredWindows, topic: str, state_topic: str):
        self.stored = stored
        self.topic = topic
        self.state_topic = state_topic
        self.ledger = b""  # as last written

    def restore(self, entries: Entries) -> None:
        self.ledger = entries.get(SKETCHES, b"")
        self.stored.restore(self.ledger or None)

    def changes(self) -> list[Change]:
        out = [Change(self.topic, 0, key, value) for key, value in self.stored.take()]
        if not out and self.ledger:  # nothing stored or forgotten: the ledger is as written
            return out
        ledger = self.stored.entry()
        if ledger != self.ledger:
            self.ledger = ledger
            out.append(Change(self.state_topic, LEDGER_PARTITION, SKETCHES.encode(), ledger))
        return out
