"""Where the consumer loop stands, and what moves it on. The loop alone changes the phase; signals
and kafka-python's rebalance callbacks only record what happened, for the loop to act on.

    RUNNING ──drain asked──▶ DRAINING ──caught up, flushed, committed──▶ FLUSHED ──all merged──▶ DONE
       ▲                        │                                          │
       └───── REWINDING ◀───────┴──── a transaction lost, partitions taken ┘   (back to FLUSHED
                                      (from any phase but DONE)                 if it was there)
    any phase ──SIGINT/SIGTERM──▶ a last checkpoint ──▶ DONE

- RUNNING: counting; a checkpoint every CHECKPOINT_SECONDS; idle partitions move on with the clock.
- DRAINING: SIGUSR1 or --exit-at-end: reading up to the end offsets of that moment (`targets`).
- FLUSHED: every window of the owned partitions closed and committed; the merger (if this consumer
  is it) merges on until every partition's flushed input is in.
- REWINDING: the work since the last checkpoint is lost (its transaction aborted): every owned
  partition is restored, as a restart would, and reading goes on from the committed offsets.
"""
from __future__ import annotations

import signal
from enum import Enum
from typing import Any

from kafka import ConsumerRebalanceListener


class Phase(Enum):
    RUNNING = "running"
    DRAINING = "draining"
    FLUSHED = "flushed"
    REWINDING = "rewinding"
    DONE = "done"


class RunState:
    """The phase, and what it needs: why a rewind is due, the drain's end offsets."""

    def __init__(self) -> None:
        self.phase = Phase.RUNNING
        self.why: str | None = None  # of the rewind due
        self.targets: dict[Any, int] | None = None  # DRAINING: the end offsets to read up to
        self._resume = Phase.RUNNING  # where a rewind goes back to
        self.rewinds = 0

    def rewind(self, why: str) -> None:
        """The work since the last checkpoint must be redone (the first reason is the one said)."""
        if self.phase is Phase.DONE:
            return
        if self.phase is not Phase.REWINDING:
            self._resume = Phase.FLUSHED if self.phase is Phase.FLUSHED else Phase.RUNNING
            self.why = why
        self.phase = Phase.REWINDING

    def rewound(self) -> None:
        """Restored to the last checkpoint: a drain under way starts again from fresh end offsets."""
        assert self.phase is Phase.REWINDING
        self.phase, self.why, self.targets = self._resume, None, None
        self.rewinds += 1

    def drain(self, targets: dict[Any, int]) -> None:
        assert self.phase is Phase.RUNNING
        self.phase, self.targets = Phase.DRAINING, targets

    def flushed(self) -> None:
        assert self.phase is Phase.DRAINING
        self.phase, self.targets = Phase.FLUSHED, None

    def done(self) -> None:
        self.phase = Phase.DONE

    @property
    def rewinding(self) -> bool:
        return self.phase is Phase.REWINDING


class Requests:
    """The user's: SIGINT/SIGTERM stop now (a checkpoint of what was done first, when the broker
    answers); SIGUSR1 drains: read up to the end offsets of this moment, emit everything, exit."""

    def __init__(self, install: bool = True) -> None:
        self.stop = False
        self.drain = False
        if install:
            signal.signal(signal.SIGINT, self._stop)
            signal.signal(signal.SIGTERM, self._stop)
            signal.signal(signal.SIGUSR1, self._drain)

    def _stop(self, *_: Any) -> None:
        self.stop = True

    def _drain(self, *_: Any) -> None:
        self.drain = True


class GroupEvents(ConsumerRebalanceListener):  # type: ignore[misc]  # kafka-python has no types
    """The group's, recorded on kafka-python's network loop (no I/O, no state of the loop's here)."""

    def __init__(self) -> None:
        self.assigned = False  # the assignment changed: follow it
        self.lost = False  # the group dropped this consumer (its session expired)
        self.rebalances = 0  # assignments received (metrics.py)

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Partitions kept through a rebalance keep their state; on_partitions_assigned tells."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.assigned = True
        self.rebalances += 1

    def on_partitions_lost(self, lost: Any) -> None:
        self.lost = True

    def take(self) -> tuple[bool, bool]:
        """(assigned, lost) since the last call."""
        taken = self.assigned, self.lost
        self.assigned = self.lost = False
        return taken
