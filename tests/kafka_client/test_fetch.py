"""The fetcher's pipeline (fetch.py): batches handed out before they are prepared and prepared a
bounded number ahead, the next fetch asked for by the poll that returns records."""
from __future__ import annotations

import threading

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from tests.kafka_client.test_record_batches import built, needs_native
from uniqcount.kafka_client import fetch
from uniqcount.kafka_client.fetch import AHEAD, BatchAhead, FastPartitionRecords, _Line, fast_fetch
from uniqcount.kafka_client.record_batches import Record

FRAMES = [(1, 0, None, b'{"uid":"u%d","ts":%d}' % (i, 60 + i), []) for i in range(6)]


def ahead(buffer: bytes, from_offset: int = 0) -> BatchAhead:
    line = _Line()
    return line.add(BatchAhead(DefaultRecordBatch(buffer), TopicPartition("t", 0), True, from_offset, line))


@needs_native
def test_a_batch_comes_from_the_fetch_offset_on():
    """A fetch from inside a batch: the records before the fetch offset are left out."""
    columns = ahead(built(FRAMES, "zstd"), from_offset=4).columns()
    assert [columns.offsets[i] for i in range(len(columns))] == [4, 5, 6]
    assert columns.record(0) == Record("t", 0, 4, None, FRAMES[3][3])


@needs_native
def test_a_batch_that_fails_its_crc_check_raises_when_it_is_counted():
    broken = bytearray(built(FRAMES, "zstd"))
    broken[-3] ^= 0xFF
    batch = ahead(bytes(broken))
    with pytest.raises(CorruptRecordError, match="failed its CRC check"):
        batch.columns()


@needs_native
def test_the_line_prepares_at_most_ahead_batches_beyond_the_one_counted(monkeypatch):
    """Batches are handed to the preparing threads AHEAD at a time, in order, each counted one
    letting the next in; one asked for out of turn is started at once."""
    started: list[int] = []
    release = threading.Event()

    def prepared(batch, tp, check_crcs, columns):
        started.append(batch.base_offset)
        release.wait(10)
        return None

    monkeypatch.setattr(fetch, "_prepared", prepared)
    line = _Line()
    batches = [line.add(BatchAhead(DefaultRecordBatch(built(FRAMES)), TopicPartition("t", 0), False, 0, line))
               for _ in range(AHEAD + 3)]
    assert sum(b.future is not None for b in batches) == AHEAD
    release.set()
    batches[0].future.result()
    line.counted()
    assert sum(b.future is not None for b in batches) == AHEAD + 1
    line.start(through=batches[-1])
    assert all(b.future is not None for b in batches)


@pytest.mark.kafka
@needs_native
def test_a_poll_hands_out_batches_before_they_are_prepared_and_has_the_next_fetch_under_way(
        bootstrap, topic_name, monkeypatch):
    """The preparing threads are held: a poll still returns, with BatchAheads; once let go, their
    columns are the frames sent. And the poll that returned them, after waiting for its fetch, has
    asked for the next one (kafka-python 3.0.12 alone asks only at the next poll)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="zstd", batch_size=4096, linger_ms=20)
    values = [b'{"uid":"u%d","ts":%d,"pad":"%s"}' % (i, 60 + i, b"x" * 200) for i in range(2000)]
    for value in values:
        producer.send(topic_name, value)
    producer.flush()
    producer.close()
    release = threading.Event()
    prepare = fetch._prepared
    monkeypatch.setattr(fetch, "_prepared", lambda *args: (release.wait(30), prepare(*args))[1])
    consumer = fast_fetch(KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                        max_partition_fetch_bytes=32768), frozenset([topic_name]))
    tp = TopicPartition(topic_name, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    try:
        got = []
        while not got:
            got = consumer.poll(timeout_ms=2000).get(tp, [])
        assert all(type(batch) is BatchAhead for batch in got)
        assert not any(batch.future.done() for batch in got if batch.future)  # none prepared: held
        fetcher = consumer._fetcher
        assert fetcher._nodes_with_pending_fetch_requests or fetcher._completed_fetches
        release.set()
        seen = []
        while len(seen) < len(values):
            for batch in got:
                columns = batch.columns()
                seen += [bytes(columns.value(i)) for i in range(len(columns))]
            got = consumer.poll(timeout_ms=2000).get(tp, [])
        assert seen == values
    finally:
        release.set()
        consumer.close()


@needs_native
@pytest.mark.parametrize("columns", [True, False])
def test_an_old_format_batch_fetched_from_inside_gives_the_records_from_the_fetch_offset_on(columns):
    """A v1 batch (an old client's) in an input topic, fetched from its middle: the records before
    the fetch offset are left out on both paths, as the library leaves them out."""
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    for offset in range(5):
        builder.append(offset, timestamp=1_700_000_000_000, key=None, value=FRAMES[offset][3])
    reader = type("Reader", (FastPartitionRecords,), {"columns_for": frozenset(["t"] if columns else [])})
    records = reader(3, TopicPartition("t", 0), MemoryRecords(bytes(builder.build())))
    assert [(r.offset, r.value) for r in records.take(100)] == [(3, FRAMES[3][3]), (4, FRAMES[4][3])]
