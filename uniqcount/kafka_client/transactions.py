"""Kafka transactions with time limits: one checkpoint (records, dead letters, state entries and the
consumed offsets) commits as a whole or not at all.

kafka-python 3.0.12's `send_offsets_to_transaction` and `commit_transaction` wait without end for
the broker, so a broker that is away would freeze the loop with no status line and no
BROKER_WAIT_SECONDS. Here each step is started once on the library's transaction manager and
waited for in slices of `timeout` seconds; waiting again on the same step is safe (it is not sent
twice).

A step that fails leaves the transaction unusable (the broker aborted it after its timeout, the
group moved on and refused the offsets, the producer was fenced): TransactionFailed, and the caller
redoes everything since the last checkpoint. ProducerFenced is the one that says another producer
took this transactional id: a second consumer of the group started with the same INSTANCE_ID.
"""
from __future__ import annotations

from typing import Any, Callable

from kafka.errors import KafkaError, ProducerFencedError

from uniqcount.kafka_client.internals import require

TRANSACTION_PARTS = ["_transaction_manager.initialize_transactions", "_transaction_manager.begin_transaction",
                     "_transaction_manager.send_offsets_to_transaction", "_transaction_manager.begin_commit",
                     "_transaction_manager.begin_abort", "_sender.wakeup"]


class TransactionFailed(Exception):
    """The transaction cannot commit: what it held is redone from the last checkpoint."""


class Overdue(TransactionFailed):
    """A step still under way at its deadline."""


class Fenced(TransactionFailed):
    """Another producer started with this transactional id."""


class Transactions:
    def __init__(self, producer: Any):
        require(producer, TRANSACTION_PARTS, "transactions with time limits")
        self.producer = producer
        self.manager = producer._transaction_manager
        self._step: tuple[str, Any] | None = None  # (name, result) started and not done yet
        self.ready = False  # initialized, a transaction begun

    def _wait(self, name: str, start: Callable[[], Any], timeout: float) -> bool:
        """True once the step is done; False if it is still under way after `timeout` seconds."""
        if self._step is None or self._step[0] != name:
            self._step = (name, start())
            self.producer._sender.wakeup()
        result = self._step[1]
        try:
            done = result.wait(timeout_ms=int(timeout * 1000))
        except ProducerFencedError as exc:
            self._step = None
            raise Fenced(f"{type(exc).__name__}: {exc}") from None
        except KafkaError as exc:
            self._step = None
            raise TransactionFailed(f"{name}: {type(exc).__name__}: {exc}") from None
        if done:
            self._step = None
        return bool(done)

    def start(self) -> None:
        """Starts `init` without waiting for it: it runs while the consumer joins its group."""
        self._step = ("init", self.manager.initialize_transactions())
        self.producer._sender.wakeup()

    def init(self, timeout: float) -> bool:
        """Fences any earlier producer of this transactional id and ends (aborts) its open
        transaction, then begins the first one."""
        if self.ready:
            return True
        if not self._wait("init", self.manager.initialize_transactions, timeout):
            return False
        self.manager.begin_transaction()
        self.ready = True
        return True

    def offsets(self, offsets: dict[Any, Any], group_metadata: Any, timeout: float) -> bool:
        return self._wait("offsets", lambda: self.manager.send_offsets_to_transaction(offsets, group_metadata),
                          timeout)

    def commit(self, timeout: float) -> bool:
        """Commits, and begins the next transaction."""
        if not self._wait("commit", self.manager.begin_commit, timeout):
            return False
        self.manager.begin_transaction()
        return True

    def abort(self, timeout: float) -> bool:
        """Drops what the transaction holds (a rebalance took some of its partitions), and begins
        the next one."""
        if not self._wait("abort", self.manager.begin_abort, timeout):
            return False
        self.manager.begin_transaction()
        return True
