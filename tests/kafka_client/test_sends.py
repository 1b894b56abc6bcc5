"""A send refused up front because an earlier transactional request failed (kafka-python's
"Cannot perform send ...") is a lost transaction, redone from the last checkpoint, not an error
that ends the consumer."""
from __future__ import annotations

import pytest
from kafka.errors import KafkaError, ProducerFencedError, TransactionAbortableError

from uniqcount.kafka_client.sends import Sends
from uniqcount.kafka_client.transactions import Fenced, TransactionFailed


class RefusingProducer:
    def __init__(self, transactional_id: str | None, cause: Exception):
        self.config = {"max_request_size": 1 << 20, "transactional_id": transactional_id}
        self.cause = cause

    def send(self, *args: object, **kwargs: object) -> None:
        raise KafkaError("Cannot perform send because at least one previous transactional or idempotent request "
                         "has failed with errors.", self.cause)


@pytest.mark.parametrize("cause, lost", [(ProducerFencedError(), Fenced),
                                         (TransactionAbortableError(), TransactionFailed)])
def test_a_transactional_producer_in_error_means_the_transaction_is_lost(cause, lost):
    with pytest.raises(lost) as raised:
        Sends(RefusingProducer("group-host-0", cause), 600, {}).send("out", b"k", b"v")
    assert type(cause).__name__ in str(raised.value)


def test_a_plain_producer_in_error_raises_what_kafka_python_said():
    with pytest.raises(KafkaError, match="Cannot perform send"):
        Sends(RefusingProducer(None, ProducerFencedError()), 600, {}).send("out", b"k", b"v")
