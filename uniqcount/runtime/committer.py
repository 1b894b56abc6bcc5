"""The one owner of exactly-once: the transactional producer, its transaction, fencing and the retry
rule for each step. Everything the consumer sends (records, dead letters, partial results, state
entries) goes through its `sends`, inside the transaction under way; `commit` ends that transaction
with the consumed offsets in it, in this order:

1. the checkpoint's changes (state entries, partial results, tombstones) are sent;
2. every record sent since the last commit is acknowledged (or the broker refused one: SendFailed);
3. the offsets join the transaction (refused by the group: a zombie, the transaction is redone);
4. the transaction commits, and the next one begins.

A step that cannot end well (fenced, aborted by the broker, refused offsets) means `redo`: the
producer is made anew (its start aborts what the old one left open) and the caller goes back to the
last checkpoint. Each transactional id (identity.py) belongs to one consumer:
fenced twice within FENCED_AGAIN_SECONDS, another consumer has it, and this one stops (FencedOut).
"""
from __future__ import annotations

import time
from enum import Enum
from typing import Any, Callable, Iterable, NamedTuple

from kafka import OffsetAndMetadata

from uniqcount.kafka_client.kafka_io import TRANSACTION_TIMEOUT_MS, close_producer
from uniqcount.kafka_client.sends import Sends
from uniqcount.kafka_client.transactions import Fenced, Overdue, TransactionFailed, Transactions
from uniqcount.runtime.broker_calls import CALL_SECONDS, BrokerCalls

FENCED_AGAIN_SECONDS = 120.0  # fenced twice within this: another consumer has the same transactional id
# A producer's start (init_transactions) not done by then is made anew: one whose transaction
# coordinator went away may never finish it, even once the brokers are back (seen on a cluster).
START_SECONDS = 15.0


class FencedOut(Exception):
    """One line for the user: two consumers share a transactional id."""


class TransactionsRefused(Exception):
    """One line for the user: the broker does not let this consumer use transactions."""


class Change(NamedTuple):
    """One record a checkpoint sends in its transaction: a state entry, a partial result, or a
    tombstone (value None)."""
    topic: str
    partition: int
    key: bytes
    value: bytes | None


class Outcome(Enum):
    COMMITTED = "committed"  # or nothing to commit
    REDO = "redo"  # the transaction is lost: `failure` says why
    STOPPED = "stopped"  # a stop came while the broker was away: nothing committed


class Committer:
    def __init__(self, sends: Sends, transactional_id: str, calls: BrokerCalls, interval: float,
                 new_producer: Callable[[], Any], group_metadata: Callable[[], Any]):
        """`interval`: CHECKPOINT_SECONDS; `new_producer`: a transactional producer of the same id,
        for a failed one."""
        self.sends = sends
        self.transactional_id = transactional_id
        self.calls = calls
        self.interval = interval
        self.new_producer = new_producer
        self.group_metadata = group_metadata
        self.transactions = _started(sends.producer)
        self.rebuilt = False  # the producer was just made again: its transaction is empty
        self.fenced_at = -FENCED_AGAIN_SECONDS
        self.failure: str | None = None  # why the transaction under way cannot commit
        self.commits = 0
        self.committed_bytes = 0  # keys and values sent in committed checkpoints (metrics.py)
        self.last_seconds = self.last_bytes = 0.0
        self.sent_before = 0  # sends.sent when the transaction under way began

    def ready(self) -> bool:
        """Before anything is sent: the transactions started (False: a stop came first). A start
        not done within START_SECONDS begins again with a new producer; the outage it makes still
        ends the run after BROKER_WAIT_SECONDS."""
        while not self.transactions.ready:
            try:
                if not self.calls.until("transactions not started", self.transactions.init,
                                        time.monotonic() + START_SECONDS):
                    return False
            except Overdue:
                self._renew()
                continue
            except TransactionFailed as exc:
                raise TransactionsRefused(
                    f"the broker refuses transactions to {self.transactional_id} ({exc}); exactly once needs "
                    "them (Kafka 0.11 or later; with ACLs: Write and Describe on that TransactionalId); "
                    "without them use --input, which guarantees nothing across a crash") from None
            self.sent_before = self.sends.sent
        return True

    def commit(self, changes: Iterable[Change], offsets: dict[Any, int]) -> Outcome:
        """The transaction under way, with `changes` and the consumed `offsets`, committed."""
        if self.failure:
            return Outcome.REDO
        if not self.ready():
            return Outcome.STOPPED
        changes = list(changes)
        if not changes and self.sends.sent == self.sent_before:  # nothing new: is the broker there at all?
            if self.calls.answers():
                self.calls.outage.ended()
            else:
                self.calls.outage.failed("no answer")
            return Outcome.COMMITTED
        # the broker's clock of the transaction started with its first send, at most an interval ago
        deadline = time.monotonic() + TRANSACTION_TIMEOUT_MS / 1000 - self.interval - CALL_SECONDS
        committed = {tp: OffsetAndMetadata(position, "", -1) for tp, position in offsets.items()}
        began, size = time.monotonic(), sum(len(c.key) + len(c.value or b"") for c in changes)
        try:
            for change in changes:
                self.sends.send(change.topic, change.key, change.value, partition=change.partition)
            if not (self.calls.until("results, dead letters and state not acknowledged", self.sends.settle, deadline)
                    and (not committed or self.calls.until(
                        "offsets not added to the transaction",
                        lambda timeout: self.transactions.offsets(committed, self.group_metadata(), timeout), deadline))
                    and self.calls.until("transaction not committed", self.transactions.commit, deadline)):
                return Outcome.STOPPED
        except TransactionFailed as exc:
            self.fail(exc)
            return Outcome.REDO
        self.sent_before = self.sends.sent
        self.commits += 1
        self.committed_bytes += size
        self.last_seconds, self.last_bytes = time.monotonic() - began, size
        return Outcome.COMMITTED

    def fail(self, exc: TransactionFailed) -> None:
        """A transaction that cannot commit: a new producer (its start aborts the old one's open
        transaction); `failure` says why until `abort` (the caller's rewind)."""
        now = time.monotonic()
        if isinstance(exc, Fenced):
            if now - self.fenced_at < FENCED_AGAIN_SECONDS:
                raise FencedOut(f"another consumer uses the transactional id {self.transactional_id} and fenced "
                                f"this one twice: give each consumer of the group its own INSTANCE_ID (or none: each "
                                "then takes a slot of its host); nothing since the last checkpoint was committed") from None
            self.fenced_at = now
        self.failure = self.failure or f"the checkpoint's transaction failed ({exc})"
        self._renew()
        self.rebuilt = True

    def _renew(self) -> None:
        """A new producer of the same transactional id: its start fences the old one and aborts what
        it left open."""
        close_producer(self.sends.producer, 0)
        producer = self.new_producer()
        self.sends.replace(producer)
        self.transactions = _started(producer)

    def abort(self) -> None:
        """Drops what the transaction under way holds (a rewind). A new producer has nothing to abort,
        but starts now: its start aborts what the old one left open, which the restore that follows
        (read_committed) would otherwise wait on until the broker's transaction timeout (30 s, seen
        after two nodes were down)."""
        if self.rebuilt:
            self.ready()
        elif self.ready():
            try:
                self.calls.until("transaction not aborted", self.transactions.abort,
                                 time.monotonic() + TRANSACTION_TIMEOUT_MS / 1000)
                self.sent_before = self.sends.sent
            except TransactionFailed as exc:
                self.fail(exc)
        self.rebuilt = False
        self.failure = None

    def close(self, timeout: float) -> None:
        close_producer(self.sends.producer, timeout)


def _started(producer: Any) -> Transactions:
    """Its start runs while the group is joined and the state restored (`ready` waits for it)."""
    transactions = Transactions(producer)
    transactions.start()
    return transactions
