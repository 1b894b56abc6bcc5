"""Kafka record batches (message format v2) decoded and encoded a batch at a time, for the hot paths.

kafka-python reads every record through a dozen property calls and builds a 13-field ConsumerRecord
for it: on this machine it cannot hand out more than ~100k records/s of the canonical 2 KB frames
even when they are thrown away. The consumer needs only offset, key and value: `decode_records` (and
its C twin, native/batches.c) walks a batch in one tight loop into `Record`s (a bare drain of the
canonical topic: 101k records/s through the library's reader, 220–240k through this one), and
`RecordColumns` holds an input batch as columns, each frame's uid hash and ts found by the same C
call with the GIL let go. fetch.py is where kafka-python's fetcher is given them.

The producer's side is `encode_records`, `compressed` and `build_batch`: the records of a whole
block of values in one loop (~0.7 µs a record against ~2.4 µs through kafka-python's builder);
block_producer.py hands the result to KafkaProducer's own sender.

Written against kafka-python 3.0.12 (pinned): the batch's decompressed buffer is an internal;
tests/kafka_client/test_record_batches.py checks the decoders against the library.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

from kafka.codec import gzip_encode, lz4_encode, snappy_encode, zstd_encode
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch

try:  # the compiled twin of decode_records (native/, built by pip from requirements.txt)
    import uniqcount_native
except ImportError:
    uniqcount_native = None
from kafka.record.util import calc_crc32c, encode_varint

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
    ts found in the same call (as frames.scan_values finds them): the consumer makes no Python object
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

    def ref(self, i: int) -> Record:
        """What a dead letter or a held frame of record i is made from: the record."""
        return self.record(i)

    def record(self, i: int) -> Record:
        return Record(self.topic, self.partition, self.offsets[i], self._slice(self.keys, i), self._slice(self.values, i))

    def value(self, i: int) -> bytes | memoryview:
        """Record i's value; b"" for none (a tombstone)."""
        return self._slice(self.values, i) or b""

    def first_at(self, offset: int) -> int:
        """The index of the first record at or after `offset`."""
        return next((i for i, o in enumerate(self.offsets) if o >= offset), len(self))


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
