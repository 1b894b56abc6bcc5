"""The state topic (`<CONSUMER_GROUP>-state`): one compacted partition per input partition, whose
latest entry per key is that partition's state as of its last committed checkpoint.

Read with read_committed up to the last stable offset: what a transaction still open holds (a
consumer killed in the middle of one) is beyond it and is never part of a restore; it is aborted by
the next init_transactions of its transactional id, or by the broker after its timeout.
"""
from __future__ import annotations

import time
from typing import Any, Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError

from uniqcount.kafka_client.fetch import fast_fetch
from uniqcount.kafka_client.metadata import METADATA_MAX_AGE_MS
from uniqcount.kafka_client.security import Brokers, options

MAX_ENTRY_BYTES = 8 << 20  # the topic's max.message.bytes: the largest entry (state.py) is 2 MiB


def state_topic(group: str) -> str:
    return f"{group}-state"


def committed_reader(brokers: Brokers) -> KafkaConsumer:
    """A consumer outside any group that reads only what committed transactions wrote, a batch at a
    time, and never makes a topic by asking for it."""
    return fast_fetch(KafkaConsumer(**options(brokers), enable_auto_commit=False, allow_auto_create_topics=False,
                                    isolation_level="read_committed", fetch_max_bytes=64 << 20,
                                    max_partition_fetch_bytes=16 << 20, reconnect_backoff_max_ms=2000,
                                    metadata_max_age_ms=METADATA_MAX_AGE_MS))


class StateReader:
    """One consumer outside any group, kept for the restores of a process."""

    def __init__(self, brokers: Brokers, topic: str):
        self.topic = topic
        self.reader = committed_reader(brokers)

    def partitions(self, timeout_ms: int) -> set[int]:
        """The state topic's partitions (a topic just created may take a moment to show)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            found = self.reader.partitions_for_topic(self.topic)
            if found or time.monotonic() > deadline:
                return found or set()
            time.sleep(0.2)

    def read(self, partitions: Iterable[int], timeout_ms: int) -> dict[int, dict[str, bytes]]:
        """Every live entry of each partition: {partition: {key: value}}, tombstones applied."""
        timeout = timeout_ms / 1000
        tps = [TopicPartition(self.topic, p) for p in partitions]
        entries: dict[int, dict[str, bytes]] = {tp.partition: {} for tp in tps}
        if not tps:
            return entries
        self.reader.assign(tps)
        self.reader.seek_to_beginning(*tps)
        ends = self.reader.end_offsets(tps, timeout_ms=timeout_ms)
        deadline = time.monotonic() + timeout
        while any(self.reader.position(tp, timeout_ms=timeout_ms) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"{self.topic}: nothing read for {timeout:.0f} s, short of its end offsets")
            for tp, records in self.reader.poll(timeout_ms=200).items():
                deadline = time.monotonic() + timeout  # the limit is on silence, not on a large state
                partition = entries[tp.partition]
                for record in records:
                    _apply(partition, record)
        self.reader.assign([])
        return entries

    def close(self) -> None:
        self.reader.close()


def _apply(entries: dict[str, bytes], record: Any) -> None:
    key = bytes(record.key).decode()
    if record.value is None:
        entries.pop(key, None)
    else:
        entries[key] = bytes(record.value)
