"""Follow topics from their start and keep following, outside any consumer group (what `./run.sh
serve` reads): read_committed, so a page never shows a record that an aborted transaction wrote. A
topic that does not exist yet, or gains partitions, is picked up when it appears."""
from __future__ import annotations

import time
from typing import Iterable, NamedTuple

from kafka import TopicPartition

from uniqcount.kafka_client.security import Brokers
from uniqcount.kafka_client.state_topic import committed_reader

LOOK_FOR_PARTITIONS_SECONDS = 5.0


class Record(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None


class Follower:
    def __init__(self, brokers: Brokers, topics: Iterable[str]):
        self.topics = list(topics)
        self.reader = committed_reader(brokers)
        self.assigned: set[TopicPartition] = set()
        self.looked = 0.0
        self.ends: dict[TopicPartition, int] = {}  # end offsets when first assigned: "caught up" once past

    def poll(self, timeout_ms: int = 500) -> list[Record]:
        """What was committed since the last call (waits up to `timeout_ms` when nothing was)."""
        if time.monotonic() - self.looked > LOOK_FOR_PARTITIONS_SECONDS:
            self._assign_new()
        if not self.assigned:
            time.sleep(timeout_ms / 1000)
            return []
        return [Record(tp.topic, None if r.key is None else bytes(r.key), None if r.value is None else bytes(r.value))
                for tp, records in self.reader.poll(timeout_ms=timeout_ms).items() for r in records]

    def caught_up(self) -> bool:
        """Every partition read up to where it ended when it was found (the history is in)."""
        return bool(self.assigned) and all(self.reader.position(tp) >= end for tp, end in self.ends.items())

    def _assign_new(self) -> None:
        self.looked = time.monotonic()
        found = {TopicPartition(topic, p) for topic in self.topics
                 for p in (self.reader.partitions_for_topic(topic) or ())}
        new = found - self.assigned
        if not new:
            return
        self.assigned |= new
        self.reader.assign(sorted(self.assigned))
        self.reader.seek_to_beginning(*new)
        self.ends.update(self.reader.end_offsets(sorted(new)))

    def close(self) -> None:
        self.reader.close()
