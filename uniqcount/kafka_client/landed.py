"""What a killed load of producer.py left in its topic, read back so that `--resume` sends every
line that did not land, and none that did.

Every batch producer.py sends carries, on its last record, the input's `source_id`, the line
numbers of its first and last frame and its size (block_producer.LINES_HEADER). At most IN_FLIGHT_BYTES of
batches are unacknowledged at any time, and each partition keeps its batches in the order they were
sent (idempotent producer). So, reading back in each partition the batches of this input until
twice that many bytes of them are seen (or the partition's start), and calling `before` the largest
of the partitions' earliest first lines: every line before `before` landed (its batch is older than
anything that was still unacknowledged), and a later line landed if and only if a batch read back
holds it.
"""
from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from kafka import KafkaConsumer, TopicPartition

from uniqcount.kafka_client.block_producer import LINES_HEADER, SOURCE_HEADER
from uniqcount.kafka_client.metadata import METADATA_MAX_AGE_MS
from uniqcount.kafka_client.security import Brokers, options

STEP_RECORDS = 4096  # records read back at first; doubled at each step back


def source_id(path: str) -> bytes:
    """An input's identity: its size, its first and its last MiB. The same file again (or a copy)
    gets the same id; another file, another one."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        stream.seek(0, 2)
        size = stream.tell()
        digest.update(str(size).encode())
        stream.seek(0)
        digest.update(stream.read(1 << 20))
        stream.seek(max(size - (1 << 20), 0))
        digest.update(stream.read(1 << 20))
    return digest.hexdigest()[:16].encode()


@dataclass
class Landed:
    before: int = 1  # every line before this one landed
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (first, last) of the later batches that landed

    def __post_init__(self) -> None:
        self.ranges.sort()
        self._firsts = [first for first, _ in self.ranges]

    @property
    def lines(self) -> int:
        """How many lines (blank ones included) are known to have landed."""
        return self.before - 1 + sum(last - max(first, self.before) + 1 for first, last in self.ranges
                                     if last >= self.before)

    def has(self, line: int) -> bool:
        if line < self.before:
            return True
        at = bisect.bisect_right(self._firsts, line) - 1
        return at >= 0 and self.ranges[at][1] >= line

    def missing(self, lines: Sequence[int], values: list[bytes]) -> tuple[Sequence[int], list[bytes]]:
        """The lines of a batch (and their values) that did not land."""
        if lines and lines[-1] < self.before:
            return [], []
        kept = [(line, value) for line, value in zip(lines, values) if not self.has(line)]
        return [line for line, _ in kept], [value for _, value in kept]


def read_back(brokers: Brokers, topic: str, source: bytes, scan_bytes: int) -> Landed:
    """The batches of `source` in `topic`, read back from each partition's end (see above)."""
    reader = KafkaConsumer(**options(brokers), enable_auto_commit=False, fetch_max_bytes=64 << 20,
                           metadata_max_age_ms=METADATA_MAX_AGE_MS)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        if not partitions:
            return Landed()
        begins, ends = reader.beginning_offsets(partitions), reader.end_offsets(partitions)
        ranges: list[tuple[int, int]] = []
        earliest: list[int] = []
        for tp in partitions:
            found = _partition_tail(reader, tp, begins[tp], ends[tp], source, scan_bytes)
            if found:
                ranges += found
                earliest.append(min(first for first, _ in found))
        if not earliest:
            return Landed()
        return Landed(max(earliest), ranges)
    finally:
        reader.close()


def _partition_tail(reader: KafkaConsumer, tp: TopicPartition, begin: int, end: int, source: bytes,
                    scan_bytes: int) -> list[tuple[int, int]]:
    """(first, last) of the batches of `source` at the end of one partition, stepping back until
    `scan_bytes` of them were read or the partition's start."""
    found: list[tuple[int, int]] = []
    seen = 0
    high, step = end, STEP_RECORDS
    while high > begin and seen < scan_bytes:
        low = max(begin, high - step)
        for record in _records(reader, tp, low, high):
            headers = dict(record.headers or ())
            if headers.get(SOURCE_HEADER) == source and LINES_HEADER in headers:
                first, last, size = batch_lines(headers[LINES_HEADER])
                found.append((first, last))
                seen += size
        high, step = low, step * 2
    return found


def batch_lines(header: bytes) -> tuple[int, int, int]:
    """(first line, last line, bytes of its values) of a batch, from its LINES_HEADER."""
    lines, size = header.split(b":")
    first, last = lines.split(b"-")
    return int(first), int(last), int(size)


def _records(reader: KafkaConsumer, tp: TopicPartition, low: int, high: int) -> list[Any]:
    reader.assign([tp])
    reader.seek(tp, low)
    records: list[Any] = []
    while reader.position(tp) < high:
        for batch in reader.poll(timeout_ms=1000).values():
            records += [r for r in batch if r.offset < high]
    return records
