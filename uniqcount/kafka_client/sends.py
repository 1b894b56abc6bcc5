"""Every record the consumer sends to Kafka (results, dead letters) is checked: its outcome is known
before any offset that led to it is committed.

kafka-python retries what can be retried (a leader change, a broker restarting) until the
producer's delivery timeout, which is BROKER_WAIT_SECONDS: so a failed send means the broker
refused the record or stayed away too long, and stops the consumer (SendFailed) with nothing
committed past it, so that a restart sends it again.

Outcomes are collected by callbacks, not by holding the futures: a future keeps its whole batch
(buffer and all) alive, which cost 12 MB of peak memory and 5% of the consumer's time on 2.8M
frames when every future was kept until the next commit.

A record larger than its topic's max.message.bytes (or the producer's max_request_size) is never
sent: kafka-python 3.0.12's idempotent producer takes the broker's refusal as fatal and fails every
later send with it. A dead letter that large goes as a stub (its first bytes, the original size, a
`truncated` header), never dropped; a result that large (a topic set up far too small) is SendFailed.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Sequence

from kafka.errors import (
    InvalidProducerEpochError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
    TransactionAbortableError,
    TransactionAbortedError,
)

from uniqcount.kafka_client.transactions import Fenced, TransactionFailed

STUB_BYTES = 1024  # of a dead letter too large for its topic: what the stub keeps
MOST_UNSETTLED_BYTES = 32 << 20  # sent but not yet settled, before send() waits for the broker
RECORD_OVERHEAD = 96  # most bytes a batch of one record adds to its key, value and headers

Headers = Sequence[tuple[str, bytes]]


class SendFailed(Exception):
    """One line for the user."""


class Sends:
    def __init__(self, producer: Any, wait_seconds: float, max_message_bytes: dict[str, int | None]):
        """`max_message_bytes`: of each topic sent to (None: unknown; the producer's max_request_size
        bounds every record anyway)."""
        self.producer = producer
        self.wait_seconds = wait_seconds
        self.max_message_bytes = max_message_bytes
        self.unsettled = 0  # records sent since the last settle
        self.sent = 0  # records sent, ever
        self.unsettled_bytes = 0
        self.refused: deque[tuple[str, int, BaseException]] = deque()  # (topic, bytes, error): the producer's thread

    def replace(self, producer: Any) -> None:
        """A new producer in place of one whose transaction failed: what the old one held is gone."""
        self.producer = producer
        self.unsettled = self.unsettled_bytes = 0
        self.refused.clear()

    def send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers = (),
             reason: str | None = None, partition: int | None = None) -> None:
        """`reason`: a dead letter's (one too large goes as a stub); None for a result or a state
        entry. `partition`: a state entry's (None: the producer's partitioner). A None value is a
        tombstone."""
        limit = min(self.max_message_bytes.get(topic) or 1 << 62, self.producer.config["max_request_size"])
        if size(key, value, headers) > limit:
            if reason is not None:
                key, value, headers = stub(key, value or b"", headers)
            if reason is None or size(key, value, headers) > limit:
                raise SendFailed(f"a record for {topic} is {size(key, value, headers):,} bytes, more than the "
                                 f"topic takes (max.message.bytes {limit:,}); nothing past it is committed")
        try:
            future = self.producer.send(topic, key=key, value=value, headers=list(headers), partition=partition)
        except KafkaError as exc:  # a transaction failed before: the producer takes no more sends
            if not self.producer.config.get("transactional_id"):
                raise
            raise transaction_lost(exc) from None
        n = len(value or b"")
        future.add_errback(lambda exc, topic=topic, n=n: self.refused.append((topic, n, exc)))
        self.unsettled += 1
        self.sent += 1
        self.unsettled_bytes += n
        if self.unsettled_bytes > MOST_UNSETTLED_BYTES and not self.settle(self.wait_seconds):
            raise SendFailed(f"the broker acknowledged nothing for {self.wait_seconds:.0f} s (BROKER_WAIT_SECONDS)")

    def settle(self, timeout: float | None) -> bool:
        """True once every record sent so far is acknowledged; False if the broker has not answered
        within `timeout` seconds (still retrying: ask again later). Raises SendFailed for a refusal."""
        if self.unsettled:
            try:
                self.producer.flush(timeout)  # every send done: its callback has run
            except KafkaTimeoutError:
                return False
            self.unsettled = self.unsettled_bytes = 0
        if self.refused:
            self._fail(*self.refused[0])
        return True

    def _fail(self, topic: str, nbytes: int, exc: BaseException) -> None:
        """A refusal stops the consumer; a send the transaction's end took with it (fenced by another
        producer of this transactional id, or aborted) only means redoing the transaction."""
        if isinstance(exc, (ProducerFencedError, InvalidProducerEpochError)):
            raise Fenced(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, (TransactionAbortedError, TransactionAbortableError)):
            raise TransactionFailed(f"a send for {topic}: {type(exc).__name__}: {exc}")
        if isinstance(exc, KafkaTimeoutError):
            raise SendFailed(f"the broker did not acknowledge a record for {topic} within "
                             f"{self.wait_seconds:.0f} s (BROKER_WAIT_SECONDS); nothing past it is committed, "
                             "a restart sends it again")
        raise SendFailed(f"the broker refused a record for {topic} ({nbytes:,} bytes): "
                         f"{type(exc).__name__}: {exc}; nothing past it is committed, a restart sends it again")


def transaction_lost(exc: KafkaError) -> Exception:
    """What a send refused up front means: kafka-python refuses every send once a transactional
    request has failed, naming that failure. Fenced (another producer took the transactional id) or
    any other failed transaction is redone from the last checkpoint; anything else is raised as is."""
    cause = next((arg for arg in exc.args if isinstance(arg, BaseException)), None)
    if isinstance(cause, (ProducerFencedError, InvalidProducerEpochError)):
        return Fenced(f"{type(cause).__name__}: {cause}")
    if cause is not None:
        return TransactionFailed(f"{type(cause).__name__}: {cause}")
    return exc


def size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """An upper bound of the record batch that holds only this record, uncompressed."""
    return RECORD_OVERHEAD + len(key or b"") + len(value or b"") + sum(len(k) + len(v) + 4 for k, v in headers)


def stub(key: bytes | None, value: bytes, headers: Headers) -> tuple[bytes | None, bytes, Headers]:
    """What stands for a dead letter too large for its topic: the first bytes of key and value, the
    original size and a `truncated` header, beside the reason and source headers."""
    headers = [*headers, ("original_size", str(len(value)).encode()), ("truncated", b"true")]
    return (key[:STUB_BYTES] if key is not None else None), value[:STUB_BYTES], headers
