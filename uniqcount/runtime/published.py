"""What the task that publishes the records keeps beside them (the single input partition's task, or
the merger's of a topic of several): the stored windows (core/sketches.py), whose records go to
`<OUTPUT_TOPIC>-sketches`, and the rolling windows (core/rolling.py). Their entries go to the state
topic's partition 0 in each checkpoint's transaction, so that a restore of that task picks up where
the last checkpoint left them."""
from __future__ import annotations

from uniqcount.core.rolling import MINUTE, RollingWindows
from uniqcount.core.sketches import StoredWindows
from uniqcount.runtime.committer import Change
from uniqcount.runtime.config import Settings
from uniqcount.runtime.state_log import ROLLING, SKETCHES, Entries

LEDGER_PARTITION = 0  # of the state topic, under the keys SKETCHES and ROLLING
KEYS = (SKETCHES, ROLLING)


def with_users(settings: Settings) -> set[str]:
    """The granularities whose final results must carry their users (not only a count) to whoever
    publishes: those stored, and minutes for the rolling windows."""
    return set(settings.sketch_retention) | ({"minute"} if settings.rolling else set())


def rolling_windows(settings: Settings) -> RollingWindows | None:
    """ROLLING's windows; a minute settles once no late frame can reach it (LATE_RETENTION)."""
    if not settings.rolling:
        return None
    return RollingWindows(settings.rolling, settings.hll_lg_k,
                          int(settings.late_retention + settings.allowed_lateness) + MINUTE)


class Published:
    def __init__(self, state_topic: str, stored: StoredWindows | None = None, sketches_topic: str = "",
                 rolling: RollingWindows | None = None):
        self.state_topic = state_topic
        self.stored = stored
        self.sketches_topic = sketches_topic
        self.rolling = rolling
        self.ledger = b""  # as last written

    def restore(self, entries: Entries) -> None:
        if self.stored is not None:
            self.ledger = entries.get(SKETCHES, b"")
            self.stored.restore(self.ledger or None)
        if self.rolling is not None:
            self.rolling.restore(entries.get(ROLLING))

    def changes(self) -> list[Change]:
        out: list[Change] = []
        if self.stored is not None:
            out += [Change(self.sketches_topic, 0, key, value) for key, value in self.stored.take()]
            ledger = self.stored.entry() if out or not self.ledger else self.ledger
            if ledger != self.ledger:
                self.ledger = ledger
                out.append(Change(self.state_topic, LEDGER_PARTITION, SKETCHES.encode(), ledger))
        rolling = self.rolling.entry() if self.rolling is not None else None
        if rolling is not None:
            out.append(Change(self.state_topic, LEDGER_PARTITION, ROLLING.encode(), rolling))
        return out
