"""The consumer's one rule for a broker that does not answer: try again, say so in the status line,
and give up (BrokerLost, one line) only once the outage has lasted BROKER_WAIT_SECONDS (outage.py).
A stop asked for meanwhile ends the wait."""
from __future__ import annotations

import time
from typing import Any, Callable

from kafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaError,
    LeaderNotAvailableError,
    NotCoordinatorError,
    NotLeaderForPartitionError,
)

from uniqcount.kafka_client.transactions import Overdue
from uniqcount.runtime.outage import Outage

CALL_SECONDS = 5.0  # one try of a call to the broker (commit, offsets) before it counts as failed


MOVING = (NotLeaderForPartitionError, LeaderNotAvailableError, NotCoordinatorError, CoordinatorNotAvailableError,
          CoordinatorLoadInProgressError)  # the cluster answers: a leader or coordinator is elsewhere


def retriable(exc: KafkaError) -> bool:
    return bool(getattr(exc, "retriable", False))


class BrokerCalls:
    def __init__(self, outage: Outage, stopped: Callable[[], bool], waiting: Callable[[], None],
                 answers: Callable[[], bool] = lambda: False):
        """`stopped`: a stop was asked for; `waiting`: called between tries (the status line);
        `answers`: some broker of the cluster answers (then a step that waits is not an outage of
        the whole cluster: a node is away, or a leader or coordinator is moving)."""
        self.outage = outage
        self.stopped = stopped
        self.waiting = waiting
        self.answers = answers

    def until(self, what: str, step: Callable[[float], bool], deadline: float | None = None) -> bool:
        """Try a step until it is done (True), or until a stop is asked for (False). Past `deadline`
        (a transaction's timeout: the broker aborts it anyway) the step is Overdue."""
        while not step(CALL_SECONDS):
            if deadline is not None and time.monotonic() > deadline:
                raise Overdue(f"{what} within its time limit")
            self.outage.failed(what, self.answers())
            if self.stopped():
                return False
            self.waiting()
        self.outage.ended()
        return True

    def tried(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """One try: (True, its result), or (False, None) when the broker did not answer (said as an
        outage). Errors no retry can mend are raised."""
        try:
            result = call(*args, timeout_ms=int(CALL_SECONDS * 1000), **kwargs)
        except KafkaError as exc:
            if not retriable(exc):
                raise
            self.outage.failed(f"{what}: {type(exc).__name__}", isinstance(exc, MOVING))
            return False, None
        self.outage.ended()
        return True, result

    def retried(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call the loop cannot go on without: tried until it answers or the outage is too long."""
        while True:
            answered, result = self.tried(what, call, *args, **kwargs)
            if answered:
                return result
            time.sleep(1.0)
