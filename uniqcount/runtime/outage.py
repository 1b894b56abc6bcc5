"""A broker that went away: said once when it starts and when it ends, shown in the status line while
it lasts, and fatal (BrokerLost, one line) only once it has lasted BROKER_WAIT_SECONDS. Wall clock,
for humans and the give-up limit only: no count depends on it."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from uniqcount.runtime.progress import status


class BrokerLost(Exception):
    """One line for the user."""


class Outage:
    def __init__(self, who: str, limit: float):
        self.who = who
        self.limit = limit
        self.since: float | None = None  # time.time() of the first failure
        self.what = ""
        self.ended_at = 0.0  # time.monotonic() when the last outage ended

    def failed(self, what: str) -> None:
        """Something the broker should have answered did not: retried by the caller later."""
        now = time.time()
        if self.since is None:
            self.since = now
            status(f"{self.who}: broker unreachable ({what}); retrying for up to BROKER_WAIT_SECONDS")
        self.what = what
        if now - self.since > self.limit:
            raise BrokerLost(f"the broker stayed unreachable for {now - self.since:.0f} s, longer than "
                             f"BROKER_WAIT_SECONDS={self.limit:.0f} (last: {what})")

    def ended(self) -> None:
        if self.since is not None:
            status(f"{self.who}: broker reachable again after {time.time() - self.since:.0f} s")
            self.since = None
            self.ended_at = time.monotonic()

    def line(self) -> str:
        """For the status line: empty while the broker answers."""
        if self.since is None:
            return ""
        since = datetime.fromtimestamp(self.since, timezone.utc).strftime("%H:%M:%S")
        return f", broker unreachable since {since} UTC ({time.time() - self.since:.0f} s: {self.what})"
