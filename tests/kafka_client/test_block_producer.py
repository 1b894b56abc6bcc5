"""Blocks as record batches: the encoder against kafka-python's builder and reader, then through a
real broker (partitions, idempotence, a batch the broker refuses)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import MessageSizeTooLargeError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from uniqcount.kafka_client.block_producer import BlockRecords, BlockSender, blocks
from uniqcount.kafka_client.kafka_io import read_topic
from uniqcount.kafka_client.record_batches import HEADER, build_batch, compressed, encode_records

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
value = st.one_of(st.binary(max_size=300),
                  st.integers(min_value=16000, max_value=40000).map(lambda n: b"v" * n))  # past the varint table


def library_batch(values: list[bytes], codec: int, timestamp_ms: int, last_headers=(), keys=None) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    for offset, v in enumerate(values):
        headers = list(last_headers) if offset == len(values) - 1 else []
        builder.append(offset, timestamp=timestamp_ms, key=keys[offset] if keys else None, value=v, headers=headers)
    return bytes(builder.build())


header = st.tuples(st.text(max_size=20), st.binary(max_size=200))


@settings(max_examples=60, deadline=None)
@given(st.lists(value, min_size=1, max_size=40), st.sampled_from(sorted(CODECS)), st.lists(header, max_size=3),
       st.booleans(), st.data())
def test_encoded_batch_equals_the_library_builders(values, codec, last_headers, keyed, data):
    """Byte for byte, past the leader epoch the broker overwrites (kafka-python writes 0, Java -1)."""
    keys = data.draw(st.lists(st.one_of(st.none(), st.binary(max_size=300)), min_size=len(values),
                              max_size=len(values))) if keyed else None
    body, attributes = compressed(encode_records(values, last_headers, keys), CODECS[codec])
    ours = bytes(build_batch(body, attributes, len(values), 1_700_000_000_123))
    library = library_batch(values, CODECS[codec], 1_700_000_000_123, last_headers, keys)
    assert ours[16:] == library[16:]
    assert ours[:12] == library[:12]


def test_many_records_take_the_computed_varints():
    values = [b"%d" % i for i in range(40000)]  # offset deltas past the table
    batch = DefaultRecordBatch(build_batch(*compressed(encode_records(values), 0), len(values), 5))
    assert [(r.offset, r.value, r.timestamp) for r in batch] == [(i, v, 5) for i, v in enumerate(values)]


def test_producer_state_reaches_the_header():
    batch = DefaultRecordBatch(build_batch(*compressed(encode_records([b"a", b"b"]), 4), 2, 7, producer_id=42,
                                           producer_epoch=3, base_sequence=100, transactional=True))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence, batch.is_transactional) == (42, 3, 100, True)
    assert batch.validate_crc() and [r.value for r in batch] == [b"a", b"b"]


def test_block_records_take_the_producer_state_set_before_the_drain():
    """The sender sets the idempotent producer's id and sequence on a batch, then closes it once;
    retries close it again and must not rebuild it."""
    records = BlockRecords([b"a", b"bb"], compression=4)
    records.set_producer_state(7, 1, 30, False)
    records.close()
    built = records.buffer()
    records.close()
    assert records.buffer() is built and records.next_offset() == 2 and records.is_full()
    batch = DefaultRecordBatch(bytes(built))
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7, 1, 30)
    assert batch.validate_crc() and [r.value for r in batch] == [b"a", b"bb"]
    assert records.size_in_bytes() == len(built)


@given(st.lists(st.binary(max_size=500), min_size=1, max_size=200), st.integers(min_value=1, max_value=5000))
def test_blocks_keep_order_and_fit(values, limit):
    parts = list(blocks(values, limit))
    assert [v for part, _ in parts for v in part] == values
    for part, size in parts:
        encoded = HEADER.size + len(encode_records(part))
        assert encoded <= limit or len(part) == 1
        assert size == sum(map(len, part))


def sent(bootstrap: str, topic: str, values: list[bytes], **options) -> tuple[list, list]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
    failures: list = []
    sender = BlockSender(producer, topic, lambda frames, exc: failures.append((frames, exc)))
    futures = [f for start in range(0, len(values), 250) for f in sender.send(values[start:start + 250])]
    producer.flush(timeout=60)
    producer.close()
    assert all(f.is_done for f in futures)
    return futures, failures


def create(bootstrap: str, topic: str, partitions: int, **configs: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=configs)])
    admin.close()


@pytest.mark.kafka
@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_blocks_reach_every_partition_once_in_order(bootstrap, topic_name, codec):
    """Idempotent (kafka-python's default), so the broker checked each batch's producer id and
    sequence; 4 KB batches split the 250-value blocks."""
    create(bootstrap, topic_name, 3)
    values = [b'{"uid":"u%d","ts":%d}' % (i, i) + b" " * (i % 97) for i in range(3000)]
    futures, failures = sent(bootstrap, topic_name, values, batch_size=4096,
                             compression_type=None if codec == "none" else codec)
    assert failures == [] and len(futures) > len(values) // 250
    records = read_topic(bootstrap, topic_name)
    assert sorted(bytes(r.value) for r in records) == sorted(values)
    for partition in range(3):
        mine = [bytes(r.value) for r in sorted(records, key=lambda r: r.offset) if r.partition == partition]
        assert mine == [v for v in values if v in set(mine)], "a partition's values out of input order"
        assert len(mine) > 500, "blocks did not go round the partitions"


@pytest.mark.kafka
def test_a_block_too_large_for_the_topic_fails_by_name(bootstrap, topic_name):
    """The library would split it and the block's future would never finish: it fails instead."""
    create(bootstrap, topic_name, 1, **{"max.message.bytes": "20000"})
    values = [b"x" * 1000] * 50
    futures, failures = sent(bootstrap, topic_name, values, batch_size=1 << 20)
    assert len(failures) == 1
    frames, exc = failures[0]
    assert frames == 50 and isinstance(exc, MessageSizeTooLargeError)
