"""The Kafka edges against the real broker."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewPartitions, NewTopic
from kafka.consumer.fetcher import Fetcher

from uniqcount.kafka_client import fetch, kafka_io
from uniqcount.kafka_client.block_producer import BlockSender
from uniqcount.kafka_client.fetch import FastPartitionRecords, fast_fetch
from uniqcount.kafka_client.internals import LibraryMismatch
from uniqcount.kafka_client.record_batches import Record
from uniqcount.kafka_client.transactions import Transactions
from uniqcount.runtime import config


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
    settings = config.load().replace(bootstrap_servers=bootstrap, consumer_group=f"group-{uuid.uuid4().hex[:8]}")
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


def test_a_missing_internal_is_one_line_naming_it():
    class Consumer:  # a kafka-python whose fetcher has no PartitionRecords
        _fetcher = object()

    with pytest.raises(LibraryMismatch, match=r"has no _fetcher.PartitionRecords, _fetcher.fetch_records, "
                                              r"_fetcher.send_fetches, which the fast record-batch reader needs: "
                                              r"uniqcount is written for kafka-python 3.0.12"):
        fast_fetch(Consumer())
    assert "_fetcher.PartitionRecords" not in vars(Fetcher)  # nothing was patched on the library itself


def test_a_missing_codec_library_is_one_line_naming_the_package(monkeypatch):
    """Without python-snappy, a consumer stopped at the first snappy batch another client wrote."""
    monkeypatch.setitem(fetch.CODEC_PACKAGES, "snappy", (lambda: False, "python-snappy"))
    with pytest.raises(LibraryMismatch, match=r"^kafka-python cannot read snappy batches here: python-snappy not "
                                              r"installed \(pip install -r requirements.txt\)$"):
        fast_fetch(object())


@pytest.mark.kafka
def test_the_internals_the_patches_need_exist_in_the_installed_library(bootstrap):
    """The start-up checks pass on the pinned kafka-python (they would stop consumer.py otherwise)."""
    settings = config.load().replace(bootstrap_servers=bootstrap, consumer_group=f"group-{uuid.uuid4().hex[:8]}")
    producer = kafka_io.producer(settings)
    transactional = kafka_io.producer(settings, f"t-{settings.consumer_group}")
    consumer = kafka_io.consumer(settings)
    try:
        assert consumer._fetcher.PartitionRecords is FastPartitionRecords
        Transactions(transactional)  # checks the transaction manager's parts it drives
    finally:
        consumer.close()
        for made in (producer, transactional):
            kafka_io.close_producer(made, 5)


def values(count: int) -> list[bytes]:
    return [b'{"uid":"u%d","ts":%d}' % (i, 1_700_000_000 + i) for i in range(count)]


@pytest.mark.kafka
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_the_fast_paths_are_the_ones_in_use(bootstrap, topic_name, monkeypatch, codec):
    """The library's own per-record paths are made to fail: the block sender must never call
    KafkaProducer.send, and the consumer must never take kafka-python's record iterator. What comes
    back are uniqcount's own Records, every value intact, with every codec."""
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic_name, 1, 1)])
    monkeypatch.setattr(KafkaProducer, "send", lambda *_, **__: pytest.fail("the per-record send was used"))
    monkeypatch.setattr(Fetcher.PartitionRecords, "take",
                        lambda *_, **__: pytest.fail("kafka-python's record iterator was used"))
    settings = config.load().replace(bootstrap_servers=bootstrap, consumer_group=f"group-{uuid.uuid4().hex[:8]}",
                                     producer_compression=codec)
    producer = kafka_io.producer(settings)
    sender = BlockSender(producer, topic_name, on_failure=lambda *_: pytest.fail("a block was refused"))
    futures = sender.send(values(500))
    producer.flush(30)
    assert all(f.is_done and f.succeeded() for f in futures)
    kafka_io.close_producer(producer, 5)
    consumer = kafka_io.consumer(settings)
    got = []
    try:
        consumer.subscribe([topic_name])
        deadline = time.monotonic() + 30
        while len(got) < 500 and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                got += records
    finally:
        consumer.close()
    assert all(type(record) is Record for record in got)
    assert [bytes(record.value) for record in got] == values(500)
