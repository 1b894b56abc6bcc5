"""producer.py --key uid: each frame keyed by its top-level uid and sent to the partition Kafka's
default partitioner gives that key (murmur2 of its bytes, made positive, modulo the partitions), so
that producers in Java, librdkafka or kafka-python put a user's frames in the same partition.

kafka-python's murmur2 is pure Python (about 10 µs a key); each uid is hashed once and remembered,
so a frame costs a dict lookup. A frame without a valid uid has no key, and goes to the
partitions in turn.
"""
from __future__ import annotations

from typing import Sequence

from kafka.partitioner.default import murmur2

from uniqcount.core.frames import parse_frames

REMEMBERED = 1 << 20  # uids whose partition is remembered; past that, forgotten and hashed again


def default_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class UidPartitions:
    def __init__(self, partitions: int):
        self.partitions = partitions
        self._of: dict[str, tuple[int, bytes]] = {}
        self._unkeyed = 0

    def split(self, values: Sequence[bytes], lines: Sequence[int]
              ) -> dict[int, tuple[list[bytes], list[int], list[bytes | None]]]:
        """values, line numbers and keys per partition, each in the input's order."""
        pairs, bad = parse_frames(values)
        invalid = {index for index, _ in bad}
        uids = iter(pairs)
        out: dict[int, tuple[list[bytes], list[int], list[bytes | None]]] = {}
        for index, value in enumerate(values):
            if index in invalid:
                key, partition = None, self._unkeyed % self.partitions
                self._unkeyed += 1
            else:
                uid = next(uids)[0]
                known = self._of.get(uid)
                if known is None:
                    if len(self._of) >= REMEMBERED:
                        self._of.clear()
                    key = uid.encode()
                    known = self._of[uid] = default_partition(key, self.partitions), key
                partition, key = known
            group = out.get(partition)
            if group is None:
                group = out[partition] = ([], [], [])
            group[0].append(value)
            group[1].append(lines[index])
            group[2].append(key)
        return out
