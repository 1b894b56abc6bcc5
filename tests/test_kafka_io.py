"""The Kafka edges against the real broker."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import NewPartitions, NewTopic

from uniqcount.runtime import config

from uniqcount.kafka_client import kafka_io
def poll_for(consumer, seconds: float) -> None:
    """Poll as consumer.py does, 200 ms at a time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.poll(timeout_ms=200)


@pytest.mark.kafka
def test_a_rejoin_that_outlasts_a_poll_still_takes_its_assignment(bootstrap, topic_name):
    """kafka-python 3.0.12 notices a rejoin for changed metadata by comparing snapshots that the
    join itself updates; when a poll's time ran out while that join was in flight, the next poll
    found nothing to do and the new assignment was never taken (consumer.py: 3 starts in 39, then
    polled forever with no partitions). Here the metadata change is a partition added to the topic,
    and a poll of 0 ms is the poll that runs out."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic_name, 1, 1)])
    settings = {**config.load(), "BOOTSTRAP_SERVERS": bootstrap, "CONSUMER_GROUP": f"group-{uuid.uuid4().hex[:8]}"}
    consumer = kafka_io.consumer(settings)
    try:
        consumer.subscribe([topic_name])
        poll_for(consumer, 5)
        assert consumer.assignment() == {TopicPartition(topic_name, 0)}
        admin.create_partitions({topic_name: NewPartitions(2)})
        time.sleep(1)
        consumer.topics()  # fresh metadata: the topic has two partitions now, so a rejoin is due
        consumer.poll(timeout_ms=0)  # the rejoin starts, and outlasts this poll
        time.sleep(1)
        poll_for(consumer, 5)
        assert consumer.assignment() == {TopicPartition(topic_name, 0), TopicPartition(topic_name, 1)}
    finally:
        consumer.close()
        admin.close()


@pytest.mark.kafka
def test_the_private_parts_close_producer_uses_exist(bootstrap):
    """kafka-python 3.0.12's close(timeout) raises from its flush instead of dropping what is left, so
    close_producer forces the sender closed, a private method: this fails if an upgrade removes it.
    What it does with the broker gone: test_faults.py's producer and consumer outages."""
    producer = kafka_io.producer({**config.load(), "BOOTSTRAP_SERVERS": bootstrap})
    try:
        assert callable(producer._sender.force_close) and callable(producer._sender.join)
    finally:
        kafka_io.close_producer(producer, 5)
