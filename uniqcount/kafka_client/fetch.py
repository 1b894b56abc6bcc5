"""Fetching fast: kafka-python's fetcher given a partition reader that hands out whole decoded
batches (record_batches.py), batches prepared by threads of their own while the ones before them are
counted, and the next fetch asked for as soon as a poll has records.

Three things kept the two cores half idle through Kafka (measured on the canonical topic, 2026-12-03:
the preparing thread idle 56% of the run and the main thread waiting on it 54%, the run taking the
sum of the two):
- `take` waited for every batch of a poll to be prepared before the poll returned, so the counting
  of a poll and the preparing of the next never overlapped. Now a batch of the input topic
  (`columns_for`) is handed out as a `BatchAhead` at once and its columns are waited for only when
  it is counted, with up to AHEAD batches prepared meanwhile.
- one preparing thread (zstd, then the C scan; both let go of the GIL) was slower than the counting
  it fed: PREPARERS threads share the batches, in order.
- kafka-python 3.0.12 sends the next fetch request only on the poll after one that had to wait for
  its fetch, so every fetch (~20k frames) left both threads waiting for the broker's answer (55
  waits of ~18 ms for the canonical topic). `fast_fetch` makes a poll that returns records send the
  next fetch before it returns.

Everything else stays kafka-python's: fetching, positions, the batch-level CRC check (v2 records
have no CRC of their own), metrics. Control batches are skipped, and under read_committed so are the
batches of aborted transactions, by the library's own bookkeeping (the aborted transactions the
fetch response lists, and the abort markers). Anything unusual takes the library's own path:
deserializers, and old message formats (v0/v1, batch by batch).

Written against kafka-python 3.0.12 (pinned): `Fetcher.PartitionRecords`, `Fetcher.fetch_records`
and `send_fetches`, and the batch's decompressed buffer are internals, checked by `fast_fetch` at
start (tests/kafka_client/test_kafka_io.py checks them against the library).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, Union

import zstandard
from kafka import codec
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer.offsets import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch
from kafka.structs import TopicPartition

from uniqcount.kafka_client.internals import LibraryMismatch, require
from uniqcount.kafka_client.record_batches import Record, RecordColumns, _decode, uniqcount_native

PREPARERS = 2  # threads preparing batches (one was slower than the counting it fed: 1.30x the consumer with two)
AHEAD = 2 * PREPARERS  # batches of a fetch prepared, or being prepared, beyond the one being counted
_PREPARER = ThreadPoolExecutor(PREPARERS, thread_name_prefix="uniqcount-batches")

Prepared = Union[RecordColumns, CorruptRecordError, None]


def inflate(batch: DefaultRecordBatch) -> None:
    """batch._maybe_uncompress, but a zstd batch of one frame that states its size (as kafka-python's
    and librdkafka's producers write them) inflated in one call, without the GIL and without the
    library's copy; any other zstd batch (several frames, no size) and the other codecs as the
    library does."""
    if not batch._decompressed and batch.compression_type == DefaultRecordBatch.CODEC_ZSTD:
        try:
            batch._buffer = zstandard.ZstdDecompressor().decompress(memoryview(batch._buffer)[batch._pos:],
                                                                    allow_extra_data=False)
        except zstandard.ZstdError:
            pass
        else:
            batch._pos, batch._decompressed = 0, True
    batch._maybe_uncompress()


def _check_crc(batch: Any, tp: TopicPartition, check_crcs: bool) -> None:
    if check_crcs and not batch.validate_crc():
        raise CorruptRecordError(f"record batch for {tp} at offset {batch.base_offset} failed its CRC check")


def _prepared(batch: DefaultRecordBatch, tp: TopicPartition, check_crcs: bool, columns: bool) -> Prepared:
    """A batch checked, inflated and (of a columns topic) scanned: its RecordColumns, the error of a
    batch that does not decode, or None."""
    _check_crc(batch, tp, check_crcs)
    if batch.magic != 2 or batch.is_control_batch:
        return None
    inflate(batch)
    if not columns:
        return None
    try:
        return RecordColumns.scanned(memoryview(batch._buffer), batch._pos, batch.records_count, batch.base_offset,
                                     tp.topic, tp.partition)
    except CorruptRecordError as exc:
        return exc


def _prepared_ahead(records: Any, tp: TopicPartition, check_crcs: bool) -> Iterator[DefaultRecordBatch]:
    """The fetch's batches in order, each checked and inflated by the preparing threads up to AHEAD
    batches before it is needed (for the topics decoded as Records). A CRC error is raised here."""
    ahead: deque[tuple[DefaultRecordBatch, Future[Prepared]]] = deque()
    batch = records.next_batch()
    while batch is not None or ahead:
        while batch is not None and len(ahead) < AHEAD:
            ahead.append((batch, _PREPARER.submit(_prepared, batch, tp, check_crcs, False)))
            batch = records.next_batch()
        ready, done = ahead.popleft()
        done.result()
        yield ready


class _Line:
    """A fetch's BatchAheads, handed to the preparing threads in order, AHEAD at most at a time
    beyond the one counted: a fetch of many partitions does not inflate all of it at once."""

    def __init__(self) -> None:
        self.waiting: deque[BatchAhead] = deque()
        self.running = 0

    def add(self, ahead: BatchAhead) -> BatchAhead:
        self.waiting.append(ahead)
        self.start()
        return ahead

    def start(self, through: BatchAhead | None = None) -> None:
        """Submits waiting batches while fewer than AHEAD run (and at least up to `through`)."""
        while self.waiting and (self.running < AHEAD or (through is not None and through.future is None)):
            self.waiting.popleft().submit()
            self.running += 1

    def counted(self) -> None:
        self.running -= 1
        self.start()


class BatchAhead:
    """A v2 batch of an input topic, handed out by `take` before it is prepared: its columns are
    waited for when it is counted, the batches before it counted meanwhile."""

    __slots__ = ("batch", "tp", "check_crcs", "from_offset", "line", "future")

    def __init__(self, batch: DefaultRecordBatch, tp: TopicPartition, check_crcs: bool, from_offset: int,
                 line: _Line):
        self.batch, self.tp, self.check_crcs, self.from_offset, self.line = batch, tp, check_crcs, from_offset, line
        self.future: Future[Prepared] | None = None

    def submit(self) -> None:
        self.future = _PREPARER.submit(_prepared, self.batch, self.tp, self.check_crcs, True)

    def __len__(self) -> int:
        return int(self.batch.records_count)

    def columns(self) -> RecordColumns:
        """Its records at or after the fetch offset; CorruptRecordError for a batch that does not
        decode (the consumer stops before its checkpoint: the restart reads it again)."""
        self.line.start(through=self)
        assert self.future is not None
        try:
            prepared = self.future.result()
        finally:
            self.line.counted()
        if isinstance(prepared, CorruptRecordError):
            raise prepared
        assert prepared is not None
        if len(prepared) and prepared.offsets[0] < self.from_offset:  # a fetch from inside the batch
            prepared = prepared[prepared.first_at(self.from_offset):]
        return prepared


Taken = Union[Record, BatchAhead]


class FastPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """One fetched partition's records, handed out by `take` a decoded batch at a time: no generator
    step per record. Of the topics in `columns_for` (the frames), a batch comes as one BatchAhead
    where uniqcount_native is built, not as Records."""

    columns_for: frozenset[str] = frozenset()

    def __init__(self, fetch_offset: int, tp: TopicPartition, records: Any, **options: Any):
        super().__init__(fetch_offset, tp, records, **options)
        plain = not (options.get("key_deserializer") or options.get("value_deserializer"))
        self._committed_only = self.isolation_level == IsolationLevel.READ_COMMITTED
        batches = self._batches_ahead if uniqcount_native is not None and tp.topic in self.columns_for else \
            self._decoded_batches
        self._batches = batches(tp, records) if plain else None
        self._pending: list[Record] | BatchAhead = []
        self._pending_end = fetch_offset  # where the next fetch starts once _pending is taken

    def _skipped(self, batch: DefaultRecordBatch) -> bool:
        """A control batch, or (under read_committed) one of an aborted transaction, as the library
        decides it (an abort marker ends its producer's aborted run; the marker is a control batch)."""
        self.leader_epoch = batch.leader_epoch
        self.bytes_read += batch.size_in_bytes
        if self._committed_only and batch.has_producer_id():
            self._consume_aborted_transactions_up_to(batch.last_offset)
            if self._contains_abort_marker(batch):
                self.aborted_producer_ids.discard(batch.producer_id)
            elif self._is_batch_aborted(batch):
                return True
        return bool(batch.is_control_batch)

    def _from_fetch_offset(self, decoded: list[Record]) -> list[Record]:
        """A batch's records at or after the fetch offset (a fetch may start inside a batch)."""
        if decoded and decoded[0].offset < self.fetch_offset:
            decoded = [r for r in decoded if r.offset >= self.fetch_offset]
        self.records_read += len(decoded)
        return decoded

    def _old_format(self, batch: Any) -> tuple[list[Record], int]:
        old = [Record(self.topic_partition.topic, self.topic_partition.partition, r.offset, r.key, r.value)
               for r in batch]
        return self._from_fetch_offset(old), old[-1].offset + 1 if old else self._pending_end

    def _decoded_batches(self, tp: TopicPartition, records: Any) -> Iterator[tuple[list[Record], int]]:
        """(records at or after the fetch offset, next offset) per batch; skipped batches give none."""
        for batch in _prepared_ahead(records, tp, self.check_crcs):
            if batch.magic != 2:
                yield self._old_format(batch)
            else:  # v2 keeps its next offset even when compaction removed the last record
                skipped = self._skipped(batch)
                yield self._from_fetch_offset([] if skipped else _decode(batch, tp.topic, tp.partition)), \
                    batch.next_offset

    def _batches_ahead(self, tp: TopicPartition, records: Any) -> Iterator[tuple[list[Record] | BatchAhead, int]]:
        """(a BatchAhead, or none for a skipped batch, next offset) per batch, without waiting."""
        line = _Line()
        while (batch := records.next_batch()) is not None:
            if batch.magic == 2 and not self._skipped(batch) and batch.records_count:
                self.records_read += batch.records_count  # its CRC is checked where it is prepared
                yield line.add(BatchAhead(batch, tp, self.check_crcs, self.fetch_offset, line)), batch.next_offset
                continue
            _check_crc(batch, tp, self.check_crcs)
            yield self._old_format(batch) if batch.magic != 2 else ([], batch.next_offset)

    def take(self, n: int | None = None) -> list[Taken]:
        """Up to `n` records, in whole batches for a BatchAhead (a poll may hand out a batch more)."""
        if self._batches is None:
            return super().take(n)
        self._maybe_raise_next_inline_exception()
        taken: list[Taken] = []
        count = 0
        while self.record_iterator is not None and (n is None or count < n):
            if not self._pending:
                self.next_fetch_offset = self._pending_end
                try:
                    self._pending, self._pending_end = next(self._batches)
                except StopIteration:
                    self.drain()
                except Exception as exc:  # as the library does: records taken first, the error next time
                    if not taken:
                        raise
                    self._next_inline_exception = exc
                    break
                continue
            if isinstance(self._pending, BatchAhead):
                taken.append(self._pending)
                count += len(self._pending)
                self._pending, self.next_fetch_offset = [], self._pending_end
                continue
            want = len(self._pending) if n is None else n - count
            part, self._pending = self._pending[:want], self._pending[want:]
            taken += part
            count += len(part)
            self.next_fetch_offset = part[-1].offset + 1 if self._pending else self._pending_end
        return taken


PARTITION_RECORDS_PARTS = ["take", "drain", "_maybe_raise_next_inline_exception", "__init__",
                           "_consume_aborted_transactions_up_to", "_contains_abort_marker", "_is_batch_aborted"]
BATCH_PARTS = ["_maybe_uncompress", "HEADER_STRUCT", "is_control_batch", "validate_crc", "next_offset",
               "has_producer_id", "producer_id", "is_transactional", "last_offset"]
FETCHER_PARTS = ["PartitionRecords", "fetch_records", "send_fetches"]


CODEC_PACKAGES = {"snappy": (codec.has_snappy, "python-snappy"), "lz4": (codec.has_lz4, "lz4"),
                  "zstd": (codec.has_zstd, "zstandard")}  # gzip is the standard library's


def require_codecs() -> None:
    """Every codec a topic may use can be read: another client's producer chooses it, batch by batch
    (a missing one used to stop the consumer at the first such batch, deep in the fetcher)."""
    missing = {name: package for name, (present, package) in CODEC_PACKAGES.items() if not present()}
    if missing:
        raise LibraryMismatch(f"kafka-python cannot read {', '.join(missing)} batches here: "
                              f"{', '.join(missing.values())} not installed (pip install -r requirements.txt)")


def _fetching_ahead(fetcher: Any) -> None:
    """The fetcher's poll, which then asks for the next fetch of the partitions it drained (a no-op
    for those with a fetch under way or records left)."""
    fetch_records = fetcher.fetch_records

    def fetch_records_then_ask(*args: Any, **kwargs: Any) -> tuple[dict[Any, list[Any]], bool]:
        records, idle = fetch_records(*args, **kwargs)
        if records:
            fetcher.send_fetches()
        return records, idle

    fetcher.fetch_records = fetch_records_then_ask


def fast_fetch(consumer: Any, columns_for: frozenset[str] = frozenset()) -> Any:
    """Give `consumer` (a KafkaConsumer) the batch-at-a-time reader and the fetch asked for ahead;
    returns it. The batches of the topics in `columns_for` come as BatchAheads (where
    uniqcount_native is built)."""
    require_codecs()
    require(consumer, [f"_fetcher.{part}" for part in FETCHER_PARTS], "the fast record-batch reader")
    require(consumer._fetcher.PartitionRecords, PARTITION_RECORDS_PARTS, "the fast record-batch reader")
    require(DefaultRecordBatch, BATCH_PARTS, "the fast record-batch reader")
    consumer._fetcher.PartitionRecords = type("FastPartitionRecords", (FastPartitionRecords,),
                                              {"columns_for": columns_for}) if columns_for else FastPartitionRecords
    _fetching_ahead(consumer._fetcher)
    return consumer
