"""Whole blocks of frames into Kafka as single record batches, through KafkaProducer's own sender.

`KafkaProducer.send` costs ~45 µs of the calling thread per record on this machine (partitioner,
futures, the accumulator's lock, a pure-Python record builder): the producer could not pass ~18k
frames/s. `BlockSender.send` hands the accumulator one ready batch per block instead: its records
are encoded in one loop (record_batches.encode_records) and compressed in the calling thread (the
sender thread compresses under the partition's lock, which stalled the next block: 72k against
105-115k frames/s), one future stands for all of them, and the header and the CRC are written when
the sender thread drains it. Everything after that is kafka-python's: leaders and metadata, retries, idempotence (producer id and sequence are
set at drain time, as for the library's own batches), acks, flush and close.

Written against kafka-python 3.0.12 (pinned): the accumulator's per-partition deques and
`MemoryRecordsBuilder`'s interface are internals; tests/kafka_client/test_block_producer.py reads what this
writes back through the broker.
"""
from __future__ import annotations

import time
from itertools import cycle
from typing import Any, Callable, Iterator, Sequence

from kafka import KafkaProducer
from kafka.errors import IllegalStateError
from kafka.producer.future import FutureProduceResult
from kafka.producer.producer_batch import ProducerBatch
from kafka.producer.sender import Sender
from kafka.structs import TopicPartition

from uniqcount.kafka_client.internals import require
from uniqcount.kafka_client.record_batches import HEADER, RECORD_OVERHEAD, build_batch, compressed, encode_records

LINES_HEADER = "uniqcount.lines"  # "first-last:bytes": input line numbers of a batch's first and last value, its size
SOURCE_HEADER = "uniqcount.source"  # which input they are lines of (landed.source_id)
HEADERS_ROOM = 128  # bytes kept free in every batch for those two headers


class BlockRecords:
    """What the accumulator and the sender need of a batch (kafka-python's MemoryRecordsBuilder),
    for a block encoded in advance. It is full from the start: nothing is appended to it."""

    def __init__(self, values: list[bytes], compression: int, last_headers: Sequence[tuple[str, bytes]] = (),
                 keys: Sequence[bytes | None] | None = None):
        body = encode_records(values, last_headers, keys)
        self._encoded_size = HEADER.size + len(body)
        self._body, self._attributes = compressed(body, compression)
        self._count = len(values)
        self._timestamp_ms = int(time.time() * 1000)
        self._producer = (-1, -1, -1, False)
        self._buffer: bytearray | None = None

    def append(self, *_: Any) -> None:
        return None  # full

    def set_producer_state(self, producer_id: int, producer_epoch: int, base_sequence: int,
                           is_transactional: bool) -> None:
        if self._buffer is not None:
            raise IllegalStateError("producer state set on a batch already built")
        self._producer = (producer_id, producer_epoch, base_sequence, is_transactional)

    @property
    def producer_id(self) -> int:
        return self._producer[0]

    @property
    def producer_epoch(self) -> int:
        return self._producer[1]

    @property
    def base_sequence(self) -> int:
        return self._producer[2]

    def close(self) -> None:
        if self._buffer is None:  # called again on retries: build once
            self._buffer = build_batch(self._body, self._attributes, self._count, self._timestamp_ms,
                                       *self._producer)

    def buffer(self) -> bytearray:
        assert self._buffer is not None
        return self._buffer

    def size_in_bytes(self) -> int:
        return HEADER.size + len(self._body)

    def compression_rate(self) -> float:
        return self.size_in_bytes() / self._encoded_size

    def is_full(self) -> bool:
        return True

    def next_offset(self) -> int:
        return self._count


def blocks(values: list[bytes], limit: int, overhead: int = RECORD_OVERHEAD) -> Iterator[tuple[list[bytes], int]]:
    """`values` in runs whose encoded batch stays within `limit` bytes (a value too large for any
    batch goes alone), each with the bytes of its values; `overhead`: most bytes a record adds."""
    size = sum(map(len, values))
    if HEADER.size + size + overhead * len(values) <= limit or len(values) == 1:
        yield values, size
    else:
        half = len(values) // 2
        yield from blocks(values[:half], limit, overhead)
        yield from blocks(values[half:], limit, overhead)


SENDER_PARTS = ["_accumulator._appends_in_progress", "_accumulator._tp_lock", "_accumulator._batches",
                "_accumulator._incomplete", "_accumulator._closed", "_sender._can_split", "config"]


class BlockSender:
    """Sends blocks of values to a topic's partitions in turn, one record batch each, and tells
    `on_failure(frames, exception)` (from the sender thread) about each batch the broker refused.
    For a producer without transactions (idempotent or not): blocks are not added to one.

    Given the topic's `max_message_bytes`, a value whose batch would be larger even compressed is
    never sent: `on_too_large(line, size)` is told at once, and the other values of its block go.
    (Sent, the broker would refuse the whole produce request for that partition, the neighbouring
    batches in it too.) The last record of every batch carries the line numbers of its first and
    last value (LINES_HEADER) and `source_id` (SOURCE_HEADER): what `--resume` reads back."""

    def __init__(self, producer: KafkaProducer, topic: str, on_failure: Callable[[int, BaseException], None],
                 max_message_bytes: int | None = None, on_too_large: Callable[[int, int], None] | None = None,
                 source_id: bytes = b""):
        require(producer, SENDER_PARTS, "the block sender")
        self._producer = producer
        self._accumulator = producer._accumulator
        self._compression = producer.config["compression_attrs"]
        self._limit = min(producer.config["batch_size"], max_message_bytes or producer.config["batch_size"])
        self._max_message_bytes = max_message_bytes
        self._topic = topic
        self._on_failure = on_failure
        self._on_too_large = on_too_large
        self._source_id = source_id
        self._partitions = cycle(sorted(producer.partitions_for(topic)))  # waits for metadata
        sender = producer._sender
        # A block the broker finds too large fails by name. The library would split it into
        # batches of its own, whose outcome never reaches the block's future.
        sender._can_split = lambda batch, error: (not isinstance(batch.records, BlockRecords)
                                                  and Sender._can_split(sender, batch, error))

    def send(self, values: list[bytes], lines: Sequence[int] | None = None, keys: Sequence[bytes | None] | None = None,
             partition: int | None = None) -> list[FutureProduceResult]:
        """One future per batch, done when the broker acknowledged or refused it. `lines[i]`: the
        line number of values[i] (default: 1, 2, ...); `keys[i]` its key (default: none); to
        `partition` (default: the partitions in turn, a batch each)."""
        lines = range(1, len(values) + 1) if lines is None else lines
        longest_key = max((len(k) for k in keys if k is not None), default=0) if keys else 0
        futures: list[FutureProduceResult] = []
        start = 0
        for block, size in blocks(values, self._limit - HEADERS_ROOM, RECORD_OVERHEAD + 2 * longest_key) if values else ():
            block_lines = lines[start:start + len(block)]
            block_keys = keys[start:start + len(block)] if keys else None
            start += len(block)
            headers = [(LINES_HEADER, b"%d-%d:%d" % (block_lines[0], block_lines[-1], size)),
                       (SOURCE_HEADER, self._source_id)]
            records = BlockRecords(block, self._compression, headers, block_keys)
            if self._on_too_large is not None and self._too_large(records):  # alone in its block (blocks() fits the others within the limit)
                self._on_too_large(block_lines[0], size)
            else:
                futures.append(self._enqueue(records, len(block), partition))
        return futures

    def _too_large(self, records: BlockRecords) -> bool:
        return self._max_message_bytes is not None and records.size_in_bytes() > self._max_message_bytes

    def _enqueue(self, records: BlockRecords, count: int, partition: int | None) -> FutureProduceResult:
        tp = TopicPartition(self._topic, next(self._partitions) if partition is None else partition)
        batch = ProducerBatch(tp, records)
        future = batch.produce_future
        future.add_callback(self._acknowledged, count)
        future.add_errback(self._on_failure, count)
        accumulator = self._accumulator
        accumulator._appends_in_progress.increment()  # as accumulator.append does, for abort on close
        try:
            with accumulator._tp_lock(tp):
                if accumulator._closed:
                    raise IllegalStateError("KafkaProducer already closed")
                accumulator._batches[tp].append(batch)
                accumulator._incomplete.add(batch)
        finally:
            accumulator._appends_in_progress.decrement()
        self._producer._sender.wakeup()
        return future

    def _acknowledged(self, frames: int, result: tuple[int, int, Any]) -> None:
        """A batch's future holds (base offset, log append time, record_exceptions_fn), the last one
        set when the broker refused the batch (or it expired, or the producer was closed)."""
        record_exceptions_fn = result[2]
        if record_exceptions_fn is not None:
            self._on_failure(frames, record_exceptions_fn(0))
