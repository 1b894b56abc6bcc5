"""Every record the consumer sends to Kafka (results, dead letters) is kept until the broker has
acknowledged it, and its outcome is checked before any offset that led to it is committed.

kafka-python retries what can be retried (a leader change, a broker restarting) until the
producer's delivery timeout, which is BROKER_WAIT_SECONDS: so a failed future means the broker
refused the record or stayed away too long, and stops the consumer (SendFailed) with nothing
committed past it, so that a restart sends it again.

A record larger than its topic's max.message.bytes (or the producer's max_request_size) is never sent: kafka-python 3.0.12's idempotent
producer takes the broker's refusal as fatal and fails every later send with it. A dead letter
that large goes as a stub (its first bytes, the original size, a `truncated` header), never dropped;
a result that large (a topic set up far too small) is SendFailed at once.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from kafka.errors import KafkaTimeoutError

STUB_BYTES = 1024  # of a dead letter too large for its topic: what the stub keeps
MOST_PENDING_BYTES = 32 << 20  # unacknowledged bytes before send() waits for the broker


class SendFailed(Exception):
    """One line for the user."""


@dataclass(slots=True)
class Pending:
    future: Any
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    reason: str | None  # a dead letter's reason; None for a result


RECORD_OVERHEAD = 96  # most bytes a batch of one record adds to its key, value and headers


class Sends:
    def __init__(self, producer: Any, wait_seconds: float, max_message_bytes: dict[str, int | None]):
        """`max_message_bytes`: of each topic sent to (None: unknown; the producer's max_request_size
        bounds every record anyway)."""
        self.producer = producer
        self.wait_seconds = wait_seconds
        self.max_message_bytes = max_message_bytes
        self.pending: list[Pending] = []
        self.pending_bytes = 0
        self.dead_letters: Counter[str] = Counter()  # acknowledged, by reason

    def send(self, topic: str, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = (),
             reason: str | None = None) -> None:
        item = Pending(None, topic, key, value, list(headers), reason)
        limit = min(self.max_message_bytes.get(topic) or 1 << 62, self.producer.config["max_request_size"])
        if size(item) > limit:
            if reason is None or size(item := stub(item)) > limit:
                raise SendFailed(f"a record for {topic} is {size(item):,} bytes, more than the topic takes "
                                 f"(max.message.bytes {limit:,}); nothing past it is committed")
        self._send(item)
        if self.pending_bytes > MOST_PENDING_BYTES and not self.settle(self.wait_seconds):
            raise SendFailed(f"the broker acknowledged nothing for {self.wait_seconds:.0f} s (BROKER_WAIT_SECONDS)")

    def _send(self, item: Pending) -> None:
        item.future = self.producer.send(item.topic, key=item.key, value=item.value, headers=item.headers)
        self.pending.append(item)
        self.pending_bytes += len(item.value) + len(item.key or b"")

    def settle(self, timeout: float | None) -> bool:
        """True once every record sent so far is acknowledged; False if the broker has not answered
        within `timeout` seconds (still retrying: ask again later). Raises SendFailed for a refusal."""
        while self.pending:
            try:
                self.producer.flush(timeout)
            except KafkaTimeoutError:
                return False
            pending, self.pending, self.pending_bytes = self.pending, [], 0
            for item in pending:
                if item.future.succeeded():
                    if item.reason is not None:
                        self.dead_letters[item.reason] += 1
                else:
                    self._refused(item, item.future.exception)
        return True

    def _refused(self, item: Pending, exc: BaseException) -> None:
        if isinstance(exc, KafkaTimeoutError):
            raise SendFailed(f"the broker did not acknowledge a record for {item.topic} within "
                             f"{self.wait_seconds:.0f} s (BROKER_WAIT_SECONDS); nothing past it is committed, "
                             "a restart sends it again")
        raise SendFailed(f"the broker refused a record for {item.topic} ({len(item.value):,} bytes): "
                         f"{type(exc).__name__}: {exc}; nothing past it is committed, a restart sends it again")


def size(item: Pending) -> int:
    """An upper bound of the record batch that holds only this record, uncompressed."""
    return RECORD_OVERHEAD + len(item.key or b"") + len(item.value) + sum(len(k) + len(v) + 4 for k, v in item.headers)


def stub(item: Pending) -> Pending:
    """What stands for a dead letter too large for its topic: the first bytes of key and value, the
    original size and a `truncated` header, beside the reason and source headers."""
    headers = [*item.headers, ("original_size", str(len(item.value)).encode()), ("truncated", b"true")]
    key = item.key[:STUB_BYTES] if item.key is not None else None
    return Pending(None, item.topic, key, item.value[:STUB_BYTES], headers, item.reason)
