"""The committer's rules without a broker: a producer whose transaction steps answer as scripted."""
from __future__ import annotations

import types
from typing import Any

import pytest
from kafka.errors import ProducerFencedError

from uniqcount.kafka_client.sends import Sends
from uniqcount.kafka_client.transactions import Fenced, TransactionFailed
from uniqcount.runtime import broker_calls
from uniqcount.runtime import committer as committer_module
from uniqcount.runtime.broker_calls import BrokerCalls
from uniqcount.runtime.committer import Change, Committer, FencedOut, Outcome
from uniqcount.runtime.outage import Outage


class Step:
    def __init__(self, error: Exception | None = None, done: bool = True):
        self.error = error
        self.done = done

    def wait(self, timeout_ms: int) -> bool:
        if self.error is not None:
            raise self.error
        return self.done


class FakeProducer:
    """The parts of kafka-python's producer the committer drives; `fail_commit`: its commit raises."""

    def __init__(self, fail_commit: Exception | None = None, starts: bool = True):
        self.sent: list[tuple[str, Any]] = []
        self.closed = False
        self.config = {"max_request_size": 1 << 20}
        self._sender = types.SimpleNamespace(wakeup=lambda: None)
        self._transaction_manager = types.SimpleNamespace(
            initialize_transactions=lambda: Step(done=starts), begin_transaction=lambda: None,
            send_offsets_to_transaction=lambda offsets, group: Step(),
            begin_commit=lambda: Step(fail_commit), begin_abort=Step)

    def send(self, topic: str, key: Any, value: Any, headers: Any, partition: Any) -> Any:
        self.sent.append((topic, value))
        return types.SimpleNamespace(add_errback=lambda callback: None)

    def flush(self, timeout: float | None) -> None:
        pass

    def close(self, timeout: float = 0) -> None:
        self.closed = True


def committer(first: FakeProducer) -> tuple[Committer, list[FakeProducer]]:
    made: list[FakeProducer] = []

    def new_producer() -> FakeProducer:
        made.append(FakeProducer())
        return made[-1]

    calls = BrokerCalls(Outage("consumer", 600), lambda: False, lambda: None, lambda: True)
    return Committer(Sends(first, 600, {}), "group-a", calls, 5.0, new_producer, lambda: None), made


CHANGE = Change("state", 0, b"clock", b"\x01")


def test_a_commit_sends_the_changes_then_commits():
    first = FakeProducer()
    made, _ = committer(first)
    assert made.commit([CHANGE], {"tp": 3}) is Outcome.COMMITTED
    assert first.sent == [("state", b"\x01")] and made.commits == 1


def test_a_transaction_that_cannot_commit_means_redo_on_a_new_producer():
    first = FakeProducer(fail_commit=ProducerFencedError())
    made, producers = committer(first)
    assert made.commit([CHANGE], {}) is Outcome.REDO
    assert "transaction failed" in (made.failure or "") and first.closed and made.sends.producer is producers[0]
    assert made.commit([CHANGE], {}) is Outcome.REDO  # nothing commits until the rewind
    made.abort()  # the rewind: the new producer starts before the restore, which aborts the old one's
    assert made.transactions.ready and made.sends.producer is producers[0]  # open transaction at once
    assert made.failure is None and made.commit([CHANGE], {}) is Outcome.COMMITTED


def test_fenced_twice_stops_with_one_line_naming_instance_id():
    made, _ = committer(FakeProducer())
    made.fail(Fenced("ProducerFencedError"))
    made.abort()
    with pytest.raises(FencedOut, match="fenced this one twice: give each consumer of the group its own INSTANCE_ID"):
        made.fail(Fenced("ProducerFencedError"))


def test_other_failures_do_not_count_as_fencing():
    made, _ = committer(FakeProducer())
    made.fail(Fenced("ProducerFencedError"))
    made.abort()
    made.fail(TransactionFailed("aborted by the broker"))
    assert made.failure and "aborted by the broker" in made.failure


def test_a_start_that_never_ends_is_made_again_with_a_new_producer(monkeypatch):
    """A producer whose init_transactions hangs (its coordinator went away) is replaced after
    START_SECONDS, and the new one starts; the hanging one is closed."""
    monkeypatch.setattr(committer_module, "START_SECONDS", 0.0)
    monkeypatch.setattr(broker_calls, "CALL_SECONDS", 0.0)
    first = FakeProducer(starts=False)
    made, producers = committer(first)
    assert made.ready()
    assert first.closed and made.sends.producer is producers[0] and made.transactions.ready
    assert made.commit([CHANGE], {}) is Outcome.COMMITTED and producers[0].sent == [("state", b"\x01")]
