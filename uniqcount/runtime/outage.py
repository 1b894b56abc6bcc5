"""A broker that went away: said once when it starts and when it ends, shown in the status line while
it lasts, and fatal (BrokerLost, one line) only once it has lasted BROKER_WAIT_SECONDS. Wall clock,
for humans and the give-up limit only: no count depends on it.

Right after a failover, requests queued behind the old leader fail and succeed by turns: an outage
that begins within RELAPSE_SECONDS of the last one's end is said only once it has lasted
RELAPSE_SAY_AFTER seconds, so the user sees one pair of lines, not a burst of them. A moving
leader or coordinator is said as such, not as a broker that is away."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from uniqcount.runtime.progress import status

RELAPSE_SECONDS = 10.0
RELAPSE_SAY_AFTER = 3.0


class BrokerLost(Exception):
    """One line for the user."""


class Outage:
    def __init__(self, who: str, limit: float):
        self.who = who
        self.limit = limit
        self.since: float | None = None  # time.time() of the first failure
        self.what = ""
        self.ended_at = -RELAPSE_SECONDS  # time.monotonic() when the last outage ended
        self.said = False  # this outage's first line is out

    def failed(self, what: str, moving: bool = False) -> None:
        """Something the broker should have answered did not: retried by the caller later.
        `moving`: the cluster answers, but a node is away or a leader or coordinator is moving."""
        now = time.time()
        if self.since is None:
            self.since, self.said = now, False
        if not self.said and (time.monotonic() - self.ended_at >= RELAPSE_SECONDS
                              or now - self.since >= RELAPSE_SAY_AFTER):
            self.said = True
            state = "the cluster answers, but a node is away or a leader is moving" if moving else \
                "broker unreachable"
            status(f"{self.who}: {state} ({what}); retrying for up to BROKER_WAIT_SECONDS")
        self.what = what
        if now - self.since > self.limit:
            raise BrokerLost(f"the broker stayed unreachable for {now - self.since:.0f} s, longer than "
                             f"BROKER_WAIT_SECONDS={self.limit:.0f} (last: {what})")

    def ended(self) -> None:
        if self.since is not None:
            if self.said:
                status(f"{self.who}: broker reachable again after {time.time() - self.since:.0f} s")
            self.since = None
            self.ended_at = time.monotonic()

    def line(self) -> str:
        """For the status line: empty while the broker answers."""
        if self.since is None:
            return ""
        since = datetime.fromtimestamp(self.since, timezone.utc).strftime("%H:%M:%S")
        return f", broker unreachable since {since} UTC ({time.time() - self.since:.0f} s: {self.what})"
