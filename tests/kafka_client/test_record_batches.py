"""The batch-at-a-time record reader against kafka-python's own: built batches, then a real broker."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from uniqcount.core.frames import parse_batch, resolved
from uniqcount.kafka_client import record_batches
from uniqcount.kafka_client.fetch import _prepared, fast_fetch
from uniqcount.kafka_client.record_batches import (
    Record,
    RecordColumns,
    _decode,
    decode_records,
    native_decode_records,
    uniqcount_native,
)
from uniqcount.runtime.counting import ColumnRefs

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}

payload = st.one_of(st.none(), st.binary(max_size=40),
                    st.integers(min_value=8000, max_value=20000).map(lambda n: b"z" * n))  # 3-byte lengths
message = st.tuples(
    st.integers(min_value=1, max_value=70000),  # offset gap: deltas past one and two varint bytes
    st.integers(min_value=0, max_value=10**7),  # timestamp step in ms
    payload, payload,
    st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=10))), max_size=2))


def built(messages: list, codec: str = "none") -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=CODECS[codec], is_transactional=0,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    offset, timestamp = 0, 1_700_000_000_000
    for gap, step, key, value, headers in messages:
        offset, timestamp = offset + gap, timestamp + step
        builder.append(offset, timestamp=timestamp, key=key, value=value, headers=headers)
    return bytes(builder.build())


def library(buffer: bytes) -> list[tuple]:
    return [(r.offset, r.key, r.value) for r in DefaultRecordBatch(buffer)]


def ours(buffer: bytes) -> list[tuple]:
    return [(r.offset, r.key, r.value) for r in _decode(DefaultRecordBatch(buffer), "t", 3)]


@settings(max_examples=60, deadline=None)
@given(st.lists(message, min_size=1, max_size=30), st.sampled_from(sorted(CODECS)))
def test_decode_equals_the_library(messages, codec):
    buffer = built(messages, codec)
    assert ours(buffer) == library(buffer)


def test_records_name_their_partition():
    (record,) = _decode(DefaultRecordBatch(built([(1, 0, b"k", b"v", [])])), "events", 2)
    assert record == Record("events", 2, 1, b"k", b"v") and record.offset == 1


def test_a_truncated_batch_is_corrupt():
    buffer = built([(1, 0, None, b"x" * 300, []), (1, 0, None, b"y" * 300, [])])
    batch = DefaultRecordBatch(buffer[:-100])
    with pytest.raises(CorruptRecordError):
        _decode(batch, "t", 0)


@pytest.mark.kafka
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_through_the_broker_as_the_library_reads(bootstrap, topic_name, codec):
    """Many batches, keys, tombstones, headers; read whole, then by 7 records, then from the middle of
    a batch: offsets, keys and values as the library gives them, and the same positions."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, batch_size=4096,
                             compression_type=None if codec == "none" else codec)
    for i in range(600):
        producer.send(topic_name, key=None if i % 3 else str(i).encode(),
                      value=None if i % 150 == 6 else b"v" * (i % 300 * 7),
                      headers=[("h", b"x")] if i % 11 == 0 else [])
    producer.flush()
    producer.close()
    tp = TopicPartition(topic_name, 0)

    def read(fast: bool, start: int, max_poll: int) -> tuple[list[tuple], int]:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=max_poll)
        if fast:
            fast_fetch(consumer)
        consumer.assign([tp])
        consumer.seek(tp, start)
        got: list[tuple] = []
        while len(got) < 600 - start:
            for records in consumer.poll(timeout_ms=2000).values():
                got += [(r.offset, r.key, r.value) for r in records]
                assert consumer.position(tp) == records[-1].offset + 1  # what a commit would store
        position = consumer.position(tp)
        consumer.close()
        return got, position

    expected = read(False, 0, 500)
    assert [o for o, _, _ in expected[0]] == list(range(600)) and expected[1] == 600
    assert read(True, 0, 500) == expected
    assert read(True, 0, 7) == expected
    assert read(True, 333, 500) == (expected[0][333:], 600)


@pytest.mark.kafka
def test_control_batches_are_skipped(bootstrap, topic_name):
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic_name}")
    producer.init_transactions()
    for attempt in range(2):
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic_name, value=f"{attempt}-{i}".encode())
        producer.commit_transaction()
    producer.close()
    consumer = fast_fetch(KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False))
    tp = TopicPartition(topic_name, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning()
    end = consumer.end_offsets([tp])[tp]
    values = []
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=2000).values():
            values += [r.value for r in records]
    consumer.close()
    assert values == [f"{a}-{i}".encode() for a in range(2) for i in range(5)]
    assert end == 12  # two commit markers took an offset each


def read_all(bootstrap: str, tp: TopicPartition, fast: bool, isolation: str) -> tuple[list[tuple], int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation,
                             max_poll_records=7)
    if fast:
        fast_fetch(consumer)
    consumer.assign([tp])
    consumer.seek_to_beginning()
    end = consumer.end_offsets([tp])[tp]
    got: list[tuple] = []
    while consumer.position(tp) < end:
        for records in consumer.poll(timeout_ms=2000).values():
            got += [(r.offset, r.key, r.value) for r in records]
    position = consumer.position(tp)
    consumer.close()
    return got, position


@pytest.mark.kafka
def test_read_committed_skips_aborted_transactions_as_the_library_does(bootstrap, topic_name, monkeypatch):
    """Plain records, a committed and an aborted transaction of one producer interleaved with a
    committed one of another, a committed one of the first producer after its abort (its abort
    marker ends the aborted run), then plain records again: read_committed through the fast reader gives
    what the library's reader gives, offsets and positions too, and never takes the library's path."""
    plain = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    first, second = (KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tx-{topic_name}-{n}")
                     for n in range(2))
    for producer in (first, second):
        producer.init_transactions()

    def sends(producer, label: str, count: int) -> None:
        for i in range(count):
            producer.send(topic_name, key=f"{label}".encode(), value=f"{label}-{i}".encode())
        producer.flush()

    sends(plain, "plain-before", 5)
    first.begin_transaction(), sends(first, "committed", 4), first.commit_transaction()
    first.begin_transaction(), second.begin_transaction()
    sends(first, "aborted", 6), sends(second, "beside", 3), sends(first, "aborted-more", 2)
    first.abort_transaction(), second.commit_transaction()
    first.begin_transaction(), sends(first, "after-abort", 3), first.commit_transaction()
    sends(plain, "plain-after", 5)
    for producer in (plain, first, second):
        producer.close()
    tp = TopicPartition(topic_name, 0)
    expected = read_all(bootstrap, tp, fast=False, isolation="read_committed")
    assert [v for _, _, v in expected[0]] == [f"{label}-{i}".encode() for label, n in
                                              [("plain-before", 5), ("committed", 4), ("beside", 3),
                                               ("after-abort", 3), ("plain-after", 5)] for i in range(n)]
    uncommitted = read_all(bootstrap, tp, fast=True, isolation="read_uncommitted")
    assert sum(1 for _, key, _ in uncommitted[0] if bytes(key).startswith(b"aborted")) == 8  # there, unless skipped
    monkeypatch.setattr(Fetcher.PartitionRecords, "take",
                        lambda *_, **__: pytest.fail("kafka-python's record iterator was used"))
    assert read_all(bootstrap, tp, fast=True, isolation="read_committed") == expected


def body_of(buffer: bytes) -> tuple[memoryview, int, int, int]:
    """(inflated buffer, where the records start, their count, base offset) of a built batch."""
    batch = DefaultRecordBatch(buffer)
    batch._maybe_uncompress()
    return memoryview(batch._buffer), batch._pos, batch.records_count, batch.base_offset


def verdict(decode, buffer: memoryview, pos: int, count: int, base: int) -> list[tuple] | str:
    try:
        return [(r.topic, r.partition, r.offset, None if r.key is None else bytes(r.key),
                 None if r.value is None else bytes(r.value)) for r in decode(buffer, pos, count, base, "t", 3)]
    except (CorruptRecordError, IndexError):  # _decode makes the Python twin's IndexError a CorruptRecordError
        return "corrupt"


needs_native = pytest.mark.skipif(uniqcount_native is None and not os.environ.get("CI"),
                                  reason="uniqcount_native is not built here (pip install ./native)")


@needs_native
def test_the_compiled_decoder_is_the_one_in_use():
    """CI builds it from requirements.txt: there, a missing build fails here instead of running slower."""
    assert record_batches.uniqcount_native is not None, record_batches.DECODER
    assert record_batches.DECODE is native_decode_records and "in C" in record_batches.DECODER


def columns_decode(buffer: memoryview, pos: int, count: int, base: int, topic: str, partition: int) -> list[Record]:
    """The records of RecordColumns (native/batches.c: scan_batch), made one by one."""
    columns = RecordColumns.scanned(buffer, pos, count, base, topic, partition)
    return [columns.record(i) for i in range(len(columns))]


compiled_twins = pytest.mark.parametrize("twin", [native_decode_records, columns_decode], ids=["records", "columns"])


@needs_native
@compiled_twins
@settings(max_examples=300, deadline=None)
@given(messages=st.lists(message, min_size=1, max_size=20), cut=st.integers(0, 1 << 16),
       flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), max_size=3),
       count_change=st.sampled_from([0, 0, 0, -1, 1, 1000]))
def test_the_compiled_twin_gives_the_pythons_records_and_verdicts(twin, messages, cut, flips, count_change):
    """On built batches, and on the same bodies cut short, with bytes flipped or the count wrong:
    the same records, or both call it corrupt."""
    buffer, pos, count, base = body_of(built(messages))
    data = bytearray(buffer)
    for at, mask in flips:
        data[pos + at % (len(data) - pos)] ^= mask
    body = memoryview(bytes(data[:len(data) - cut % (len(data) - pos + 1)]))
    count = max(0, count + count_change)
    assert verdict(twin, body, pos, count, base) == verdict(decode_records, body, pos, count, base)
    if not flips and not cut % (len(data) - pos + 1) and not count_change:
        assert verdict(twin, body, pos, count, base) == [("t", 3, *r) for r in library(built(messages))]


@needs_native
@compiled_twins
@settings(max_examples=300, deadline=None)
@given(noise=st.binary(max_size=200), count=st.integers(0, 40), base=st.integers(0, 1 << 40))
def test_the_twins_agree_on_arbitrary_bytes(twin, noise, count, base):
    body = memoryview(noise)
    assert verdict(twin, body, 0, count, base) == verdict(decode_records, body, 0, count, base)


frame = st.builds(lambda uid, ts: json.dumps({"n": {"uid": 1}, "uid": uid, "ts": ts}).encode(),
                  st.text(max_size=6), st.integers(-1, 2**38) | st.integers(0, 2**33).map(str))
frame_message = st.tuples(st.integers(1, 3), st.just(0), payload, frame | payload, st.just([]))


@needs_native
@settings(max_examples=200, deadline=None)
@given(messages=st.lists(frame_message, min_size=1, max_size=20), start=st.integers(0, 25),
       codec=st.sampled_from(sorted(CODECS)))
def test_columns_give_the_decoders_records_and_the_parsers_verdicts(messages, start, codec):
    """A batch prepared as the fetcher's thread prepares it (CRC, inflated, scanned), whole and cut (a
    poll's cut, a fetch from inside the batch): the library's records, and each value's user and ts
    or reason as parse_batch gives them from the records' values."""
    prepared = _prepared(DefaultRecordBatch(built(messages, codec)), TopicPartition("t", 3), True, True)
    columns = prepared[start:]
    records = [Record("t", 3, *r) for r in library(built(messages, codec))][start:]
    assert [columns.record(i) for i in range(len(columns))] == records
    assert list(ColumnRefs(columns)) == records and columns.value_bytes == sum(len(r.value or b"") for r in records)
    expected = parse_batch([r.value or b"" for r in records])
    got = resolved(columns.users, columns.times, columns.unsure, columns.value)
    assert (list(got.users), list(got.times), got.bad) == (list(expected.users), list(expected.times), expected.bad)
