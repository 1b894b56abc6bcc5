"""The readers of the topics a restore reads (the state topic, the partials topic), made once per
process. The state topic is created on first use, with a partition per input partition, and must
have as many: a partition's entries live in the state topic's partition of the same number."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.sends import Sends
from uniqcount.kafka_client.state_topic import StateReader, state_topic
from uniqcount.runtime.broker_calls import BrokerCalls
from uniqcount.runtime.config import Settings
from uniqcount.runtime.state_log import StateMismatch


@dataclass
class StateReaders:
    settings: Settings
    consumer: Any
    calls: BrokerCalls
    partitions_at_start: int  # of the input topic (0: not there yet; the state topic was made with as many)
    sends: Sends  # their producer learns the state topic's metadata now, not during an outage
    readers: dict[str, StateReader] = field(default_factory=dict)

    @property
    def state_topic(self) -> str:
        return state_topic(self.settings.consumer_group)

    def __call__(self, topic: str) -> StateReader:
        reader = self.readers.get(topic)
        if reader is None:
            if topic == self.state_topic:
                self._create_state_topic()
            reader = self.readers[topic] = StateReader(self.settings, topic)
            if topic == self.state_topic:
                self._check(reader)
        return reader

    def _create_state_topic(self) -> None:
        partitions = self._input_partitions()
        if partitions != self.partitions_at_start:
            kafka_io.create_topics(self.settings.replace(topic_partitions=partitions), roles=["STATE"])

    def _input_partitions(self) -> int:
        return len(self.consumer.partitions_for_topic(self.settings.topic) or ())

    def _check(self, reader: StateReader) -> None:
        partitions = self._input_partitions()
        has = len(self.calls.retried("read the state topic's partitions", reader.partitions))
        if has < partitions:
            raise StateMismatch(f"the state topic {self.state_topic} has {has} partition(s), {self.settings.topic} "
                                f"has {partitions}: give it as many (kafka-topics --alter --partitions {partitions})")
        self.sends.producer.partitions_for(self.state_topic)

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()
