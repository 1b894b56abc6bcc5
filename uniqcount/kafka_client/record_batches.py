"""Kafka record batches (message format v2) decoded and encoded a batch at a time, for the hot paths.

kafka-python reads every record through a dozen property calls and builds a 13-field ConsumerRecord
for it: on this machine it cannot hand out more than ~100k records/s of the canonical 2 KB frames
even when they are thrown away. The consumer needs only offset, key and value, so `fast_fetch`
gives one consumer's fetcher a partition reader that decodes each batch in one tight loop into
`Record`s (a bare drain of the canonical topic: 101k records/s through the library's reader,
220–240k through this one). The input topic's batches (`columns_for`) come as `RecordColumns`
instead, each prepared by a thread of its own ahead of its turn (CRC, zstd, then one C call that
walks the records and scans the frames with the GIL let go): the main thread counts while the next
batch is prepared. Everything around it stays kafka-python's: fetching, positions, the
batch-level CRC check (v2 records have no CRC of their own), metrics. Control batches are skipped,
and under read_committed so are the batches of aborted transactions, by the library's own
bookkeeping (the aborted transactions the fetch response lists, and the abort markers). Anything
unusual takes the library's own path: deserializers, and old message formats (v0/v1, batch by batch).

The producer's side is `encode_records`, `compressed` and `build_batch`: the records of a whole
block of values in one loop (~0.7 µs a record against ~2.4 µs through kafka-python's builder);
block_producer.py hands the result to KafkaProducer's own sender.

Written against kafka-python 3.0.12 (pinned): `Fetcher.PartitionRecords` and the batch's
decompressed buffer are internals; tests/kafka_client/test_record_batches.py checks them against the library.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator, NamedTuple, Sequence, Union

import zstandard
from kafka import codec
from kafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.protocol.consumer.offsets import IsolationLevel
from kafka.record.default_records import DefaultRecordBatch

try:  # the compiled twin of decode_records (native/, built by pip from requirements.txt)
    import uniqcount_native
except ImportError:
    uniqcount_native = None
from kafka.record.util import calc_crc32c, encode_varint
from kafka.structs import TopicPartition

from uniqcount.kafka_client.internals import LibraryMismatch, require

HEADER = DefaultRecordBatch.HEADER_STRUCT
RECORD_OVERHEAD = 13  # most bytes a record adds to its value below 2 MB: three varints, four fixed bytes
CODECS = {DefaultRecordBatch.CODEC_GZIP: gzip_encode, DefaultRecordBatch.CODEC_SNAPPY: snappy_encode,
          DefaultRecordBatch.CODEC_LZ4: lz4_encode, DefaultRecordBatch.CODEC_ZSTD: zstd_encode}


class Record(NamedTuple):
    """What the consumer reads of a Kafka record (the fields dead letters need too). Key and value
    are memoryviews into the batch's inflated buffer: no copy of 2 KB per frame (which took a
    fifth of the decoding), and they compare equal to the bytes they show."""
    topic: str
    partition: int
    offset: int
    key: memoryview | None
    value: memoryview | None


def _unsigned(buf: memoryview, pos: int) -> tuple[int, int]:
    """The raw (still zigzag-encoded) varint at `pos`: (value, position after it). One and two bytes
    (record lengths up to 8 KB, offset deltas up to 8k) take the short way."""
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    c = buf[pos + 1]
    if c < 0x80:
        return (b & 0x7F) | c << 7, pos + 2
    result, shift, pos = (b & 0x7F) | (c & 0x7F) << 7, 14, pos + 2
    while shift < 64:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise CorruptRecordError(f"varint at byte {pos} runs past 64 bits")


def _zigzag_varint(n: int) -> bytes:
    out = bytearray()
    encode_varint(n, out.append)
    return bytes(out)


_SMALL = [_zigzag_varint(n) for n in range(1 << 15)]  # offset deltas and record sizes below 32k


class _Computed:
    """Varints for blocks with records or counts beyond the table."""

    def __getitem__(self, n: int) -> bytes:
        return _zigzag_varint(n)


def encode_records(values: list[bytes], last_headers: Sequence[tuple[str, bytes]] = (),
                   keys: Sequence[bytes | None] | None = None) -> bytes:
    """The records of an uncompressed v2 batch body holding `values` (and `keys`, default none):
    offset deltas 0, 1, 2..., timestamp deltas 0 (every record has the batch's timestamp), no headers
    but `last_headers` on the last record (one set per batch, not per frame)."""
    longest_key = max((len(k) for k in keys if k is not None), default=0) if keys else 0
    largest = max(len(values), max(map(len, values), default=0) + RECORD_OVERHEAD + 2 * longest_key)
    varint = _SMALL if largest < len(_SMALL) else _Computed()
    key_fields = [b"\1"] * len(values) if keys is None else [b"\1" if k is None else varint[len(k)] + k for k in keys]
    parts: list[bytes] = []
    append = parts.append
    for i, (value, key) in enumerate(zip(values, key_fields)):
        n = len(value)
        offset, length = varint[i], varint[n]
        append(varint[n + len(offset) + len(length) + len(key) + 3] + b"\0\0" + offset + key + length)
        append(value)
        append(b"\0")  # no headers
    if last_headers and values:
        i, value, key = len(values) - 1, values[-1], key_fields[-1]
        offset, length = varint[i], varint[len(value)]
        headers = _zigzag_varint(len(last_headers)) + b"".join(
            _zigzag_varint(len(name.encode())) + name.encode() + _zigzag_varint(len(data)) + data
            for name, data in last_headers)
        parts[-3:] = [_zigzag_varint(len(value) + len(offset) + len(length) + len(key) + 2 + len(headers)) + b"\0\0"
                      + offset + key + length, value, headers]
    return b"".join(parts)


def compressed(body: bytes, compression: int) -> tuple[bytes, int]:
    """(`body` compressed by the codec numbered `compression`, the batch attributes saying so), or
    `body` as it is when compressing does not shrink it, as kafka-python does."""
    if compression:
        packed = CODECS[compression](body)
        if len(packed) < len(body):
            return packed, compression
    return body, 0


def build_batch(body: bytes, attributes: int, count: int, timestamp_ms: int, producer_id: int = -1,
                producer_epoch: int = -1, base_sequence: int = -1, transactional: bool = False
                ) -> bytearray:
    """A whole v2 batch: header and CRC-32C around `count` encoded (and maybe compressed) records.
    The broker sets the base offset and leader epoch."""
    if transactional:
        attributes |= DefaultRecordBatch.TRANSACTIONAL_MASK
    batch = bytearray(HEADER.size) + body
    HEADER.pack_into(batch, 0, 0, len(batch) - DefaultRecordBatch.AFTER_LEN_OFFSET, -1, 2, 0, attributes,
                     count - 1, timestamp_ms, timestamp_ms, producer_id, producer_epoch, base_sequence, count)
    crc = calc_crc32c(memoryview(batch)[DefaultRecordBatch.ATTRIBUTES_OFFSET:])
    batch[DefaultRecordBatch.CRC_OFFSET:DefaultRecordBatch.ATTRIBUTES_OFFSET] = crc.to_bytes(4, "big")
    return batch


def decode_records(buf: memoryview, pos: int, count: int, base_offset: int, topic: str, partition: int
                   ) -> list[Record]:
    """The `count` records of an uncompressed v2 batch body starting at `pos`. Timestamps and
    headers are skipped (each record's length says where the next begins), and nothing is read
    through properties, as the library's reader does field by field: ~1.1 µs a record."""
    out: list[Record] = []
    append = out.append
    unsigned = _unsigned
    new = tuple.__new__  # half the cost of Record(...), which goes through a Python-level __new__
    size = len(buf)
    for _ in range(count):
        length, pos = unsigned(buf, pos)
        end = pos + (length >> 1)
        if length & 1 or end > size:
            raise CorruptRecordError(f"record at byte {pos} has a bad length")
        pos += 1  # attributes: unused
        while buf[pos] & 0x80:  # timestamp delta: unused
            pos += 1
        delta, pos = unsigned(buf, pos + 1)
        if buf[pos] == 1:  # zigzag -1: no key
            key, pos = None, pos + 1
        else:
            key_length, pos = unsigned(buf, pos)
            key_length = (key_length >> 1) ^ -(key_length & 1)
            if pos + key_length > end:
                raise CorruptRecordError(f"record key at byte {pos} runs past its record")
            key = None if key_length < 0 else buf[pos:pos + key_length]
            pos += max(key_length, 0)
        value_length, pos = unsigned(buf, pos)
        value_length = (value_length >> 1) ^ -(value_length & 1)
        if pos + value_length > end:
            raise CorruptRecordError(f"record value at byte {pos} runs past its record")
        append(new(Record, (topic, partition, base_offset + ((delta >> 1) ^ -(delta & 1)), key,
                            None if value_length < 0 else buf[pos:pos + value_length])))
        pos = end
    if pos != size:
        raise CorruptRecordError(f"{size - pos} bytes left after the batch's {count} records")
    return out


class RecordColumns:
    """The records of one v2 batch as columns (native/batches.c: scan_batch), each value's user and
    ts found in the same call (as frames.scan_batch finds them): the consumer makes no Python object
    per frame. A Record is made only for a frame that needs one (a dead letter, a held frame); `value`
    gives the bytes of a frame the scan left to Python (`unsure`)."""

    __slots__ = ("topic", "partition", "view", "offsets", "keys", "values", "users", "times", "unsure", "value_bytes")

    def __init__(self, topic: str, partition: int, view: memoryview, offsets: Any, keys: Any, values: Any,
                 users: Any, times: Any, unsure: list[int], value_bytes: int):
        """offsets, users, times: a 64-bit int per record; keys, values: (start in `view`, length or -1) a record."""
        self.topic, self.partition, self.view = topic, partition, view
        self.offsets, self.keys, self.values, self.users, self.times = offsets, keys, values, users, times
        self.unsure, self.value_bytes = unsure, value_bytes

    @classmethod
    def scanned(cls, view: memoryview, pos: int, count: int, base_offset: int, topic: str, partition: int
                ) -> RecordColumns:
        try:
            offsets, keys, values, users, times, unsure, value_bytes = uniqcount_native.scan_batch(
                view, pos, count, base_offset)
        except ValueError as exc:
            raise CorruptRecordError(str(exc)) from None
        return cls(topic, partition, view, memoryview(offsets).cast("q"), memoryview(keys).cast("q"),
                   memoryview(values).cast("q"), memoryview(users).cast("Q"), memoryview(times).cast("q"), unsure,
                   value_bytes)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, part: slice) -> RecordColumns:
        """The records of a range (a poll's cut, a fetch from inside the batch)."""
        start, stop, _ = part.indices(len(self))
        values = self.values[2 * start:2 * stop]
        return RecordColumns(self.topic, self.partition, self.view, self.offsets[start:stop], self.keys[2 * start:2 * stop],
                             values, self.users[start:stop], self.times[start:stop],
                             [i - start for i in self.unsure if start <= i < stop], sum(max(n, 0) for n in values[1::2]))

    def _slice(self, spans: Any, i: int) -> memoryview | None:
        start, length = spans[2 * i], spans[2 * i + 1]
        return None if length < 0 else self.view[start:start + length]

    def record(self, i: int) -> Record:
        return Record(self.topic, self.partition, self.offsets[i], self._slice(self.keys, i), self._slice(self.values, i))

    def value(self, i: int) -> bytes | memoryview:
        """Record i's value; b"" for none (a tombstone)."""
        return self._slice(self.values, i) or b""

    def first_at(self, offset: int) -> int:
        """The index of the first record at or after `offset`."""
        return next((i for i, o in enumerate(self.offsets) if o >= offset), len(self))


class ColumnRecords(Sequence[Record]):
    """Record i of a RecordColumns, made when asked for: the refs of its frames (dead letters, held)."""

    __slots__ = ("columns",)

    def __init__(self, columns: RecordColumns):
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, i: int) -> Record:  # type: ignore[override]  # no slices: refs are taken one by one
        if not 0 <= i < len(self.columns):
            raise IndexError(i)
        return self.columns.record(i)


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


_PREPARER = ThreadPoolExecutor(1, thread_name_prefix="uniqcount-batches")
AHEAD = 2  # batches prepared ahead of the one being counted

Prepared = Union[RecordColumns, CorruptRecordError, None]


def _prepared(batch: DefaultRecordBatch, tp: TopicPartition, check_crcs: bool, columns: bool) -> Prepared:
    """A batch checked, inflated and (of a columns topic) scanned: its RecordColumns, the error of a
    batch that does not decode (raised only if it is counted: an aborted one is not), or None."""
    if check_crcs and not batch.validate_crc():
        raise CorruptRecordError(f"record batch for {tp} at offset {batch.base_offset} failed its CRC check")
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


def _prepared_ahead(records: Any, tp: TopicPartition, check_crcs: bool, columns: bool
                    ) -> Iterator[tuple[DefaultRecordBatch, Prepared]]:
    """The fetch's batches in order, each prepared (`_prepared`) by a thread of its own up to AHEAD
    batches before it is needed: zstd and the scan let go of the GIL, so they run beside the counting
    of the batch before, on the other core. A CRC error is raised here, at its batch."""
    ahead: deque[tuple[DefaultRecordBatch, Future[Prepared]]] = deque()
    batch = records.next_batch()
    while batch is not None or ahead:
        while batch is not None and len(ahead) < AHEAD:
            ahead.append((batch, _PREPARER.submit(_prepared, batch, tp, check_crcs, columns)))
            batch = records.next_batch()
        ready, done = ahead.popleft()
        yield ready, done.result()


class FastPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """One fetched partition's records, handed out by `take` in slices of decoded batches: no
    generator step per record. Of the topics in `columns_for` (the frames), a batch comes as one
    RecordColumns where uniqcount_native is built, not as Records."""

    columns_for: frozenset[str] = frozenset()

    def __init__(self, fetch_offset: int, tp: TopicPartition, records: Any, **options: Any):
        super().__init__(fetch_offset, tp, records, **options)
        plain = not (options.get("key_deserializer") or options.get("value_deserializer"))
        self._committed_only = self.isolation_level == IsolationLevel.READ_COMMITTED
        self._batches = self._decoded_batches(tp, records) if plain else None
        self._pending: list[Record] | RecordColumns = []
        self._pending_end = fetch_offset  # where the next fetch starts once _pending is taken

    def _decoded_batches(self, tp: TopicPartition, records: Any) -> Iterator[tuple[list[Record] | RecordColumns, int]]:
        """(records at or after the fetch offset, next offset) per batch; control batches give none."""
        topic, partition = tp.topic, tp.partition
        columns = uniqcount_native is not None and topic in self.columns_for
        for batch, prepared in _prepared_ahead(records, tp, self.check_crcs, columns):
            decoded: list[Record] | RecordColumns
            if batch.magic != 2:
                old = [Record(topic, partition, r.offset, r.key, r.value) for r in batch]
                decoded, next_offset = old, old[-1].offset + 1 if old else self._pending_end
            else:
                self.leader_epoch = batch.leader_epoch
                aborted = self._aborted(batch)  # first: a control batch may be the abort marker that ends a run
                if aborted or batch.is_control_batch:
                    decoded = []
                elif isinstance(prepared, CorruptRecordError):
                    raise prepared
                else:
                    decoded = prepared if prepared is not None else _decode(batch, topic, partition)
                next_offset = batch.next_offset  # v2 keeps it even when compaction removed the last record
            if isinstance(decoded, RecordColumns):
                if len(decoded) and decoded.offsets[0] < self.fetch_offset:  # a fetch from inside a batch
                    decoded = decoded[decoded.first_at(self.fetch_offset):]
            elif decoded and decoded[0].offset < self.fetch_offset:
                decoded = [r for r in decoded if r.offset >= self.fetch_offset]
            self.records_read += len(decoded)
            self.bytes_read += batch.size_in_bytes
            yield decoded, next_offset

    def _aborted(self, batch: DefaultRecordBatch) -> bool:
        """Under read_committed: a batch of a transaction that was aborted, as the library decides it
        (an abort marker ends its producer's aborted run; the marker itself is a control batch)."""
        if not self._committed_only or not batch.has_producer_id():
            return False
        self._consume_aborted_transactions_up_to(batch.last_offset)
        if self._contains_abort_marker(batch):
            self.aborted_producer_ids.discard(batch.producer_id)
            return False
        return self._is_batch_aborted(batch)

    def take(self, n: int | None = None) -> list[Any]:
        if self._batches is None:
            return super().take(n)
        self._maybe_raise_next_inline_exception()
        taken: list[Any] = []  # Records, or RecordColumns (each counts as its records)
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
            want = len(self._pending) if n is None else n - count
            if want >= len(self._pending):  # the whole batch: no cut (a cut of columns sums its values' sizes)
                part, self._pending = self._pending, []
            else:
                part, self._pending = self._pending[:want], self._pending[want:]
            if isinstance(part, RecordColumns):
                taken.append(part)
                last = part.offsets[-1]
            else:
                taken += part
                last = part[-1].offset
            count += len(part)
            self.next_fetch_offset = last + 1 if self._pending else self._pending_end
        return taken


def native_decode_records(buf: memoryview, pos: int, count: int, base_offset: int, topic: str, partition: int
                          ) -> list[Record]:
    """decode_records in one C call (native/batches.c): 1.12x the consumer through Kafka (docs/PERFORMANCE.md)."""
    try:
        return uniqcount_native.decode_records(buf, pos, count, base_offset, topic, partition, Record)
    except ValueError as exc:
        raise CorruptRecordError(str(exc)) from None


DECODE = native_decode_records if uniqcount_native is not None else decode_records
DECODER = ("record batches decoded in C (uniqcount_native)" if uniqcount_native is not None else
           "record batches decoded in Python: uniqcount_native is not built (pip install ./native: a C compiler needed)")


def _decode(batch: DefaultRecordBatch, topic: str, partition: int) -> list[Record]:
    batch._maybe_uncompress()
    try:
        return DECODE(memoryview(batch._buffer), batch._pos, batch.records_count, batch.base_offset, topic, partition)
    except IndexError:
        raise CorruptRecordError(f"record batch for {topic}-{partition} at offset {batch.base_offset} "
                                 "ends inside a record") from None


PARTITION_RECORDS_PARTS = ["take", "drain", "_maybe_raise_next_inline_exception", "__init__",
                           "_consume_aborted_transactions_up_to", "_contains_abort_marker", "_is_batch_aborted"]
BATCH_PARTS = ["_maybe_uncompress", "HEADER_STRUCT", "is_control_batch", "validate_crc", "next_offset",
               "has_producer_id", "producer_id", "is_transactional", "last_offset"]


CODEC_PACKAGES = {"snappy": (codec.has_snappy, "python-snappy"), "lz4": (codec.has_lz4, "lz4"),
                  "zstd": (codec.has_zstd, "zstandard")}  # gzip is the standard library's


def require_codecs() -> None:
    """Every codec a topic may use can be read: another client's producer chooses it, batch by batch
    (a missing one used to stop the consumer at the first such batch, deep in the fetcher)."""
    missing = {name: package for name, (present, package) in CODEC_PACKAGES.items() if not present()}
    if missing:
        raise LibraryMismatch(f"kafka-python cannot read {', '.join(missing)} batches here: "
                              f"{', '.join(missing.values())} not installed (pip install -r requirements.txt)")


def fast_fetch(consumer: Any, columns_for: frozenset[str] = frozenset()) -> Any:
    """Give `consumer` (a KafkaConsumer) the batch-at-a-time reader; returns it. The batches of the
    topics in `columns_for` come as RecordColumns (where uniqcount_native is built)."""
    require_codecs()
    require(consumer, ["_fetcher.PartitionRecords"], "the fast record-batch reader")
    require(consumer._fetcher.PartitionRecords, PARTITION_RECORDS_PARTS, "the fast record-batch reader")
    require(DefaultRecordBatch, BATCH_PARTS, "the fast record-batch reader")
    consumer._fetcher.PartitionRecords = type("FastPartitionRecords", (FastPartitionRecords,),
                                              {"columns_for": columns_for}) if columns_for else FastPartitionRecords
    return consumer
