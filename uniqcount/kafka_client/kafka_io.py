"""Thin Kafka edges: clients tuned for throughput, topic creation, one-line connection errors."""
from __future__ import annotations

import time
from typing import Any, Iterable, Protocol

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import AuthorizationError, KafkaTimeoutError, TopicAlreadyExistsError

from uniqcount.kafka_client import rights, sign_in
from uniqcount.kafka_client.fetch import fast_fetch
from uniqcount.kafka_client.internals import require
from uniqcount.kafka_client.metadata import METADATA_MAX_AGE_MS
from uniqcount.kafka_client.probe import any_answers, why_not
from uniqcount.kafka_client.security import Brokers, ConnectionSettings, address, options, tls_context
from uniqcount.kafka_client.sends import Sends
from uniqcount.kafka_client.state_topic import MAX_ENTRY_BYTES, state_topic

TRANSACTION_TIMEOUT_MS = 30000


PARTIALS_SEGMENT_BYTES = 64 << 20  # the log cleaner compacts closed segments only (Kafka's default: 1 GiB)


class KafkaSettings(ConnectionSettings, Protocol):
    """What the Kafka edge reads of the settings (runtime/config.py's Settings has them all)."""
    @property
    def broker_wait_seconds(self) -> float: ...
    @property
    def consumer_group(self) -> str: ...
    @property
    def dlq_topic(self) -> str: ...
    @property
    def fetch_max_bytes(self) -> int: ...
    @property
    def max_partition_fetch_bytes(self) -> int: ...
    @property
    def max_poll_records(self) -> int: ...
    @property
    def output_topic(self) -> str: ...
    @property
    def producer_batch_bytes(self) -> int: ...
    @property
    def producer_compression(self) -> str: ...
    @property
    def producer_linger_ms(self) -> int: ...
    @property
    def session_timeout_ms(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def topic_partitions(self) -> int: ...


def partials_topic(output_topic: str) -> str:
    """Where the consumers of a topic with several partitions send partial results for the merger."""
    return f"{output_topic}-partials"


def sketches_topic(output_topic: str) -> str:
    """Where the windows published are stored for range queries (core/sketches.py)."""
    return f"{output_topic}-sketches"


class BrokerUnavailable(Exception):
    """One line for the user."""


def require_broker(brokers: Brokers) -> None:
    bootstrap, tls = address(brokers), tls_context(brokers)
    if not any_answers(bootstrap, tls=tls):
        why = why_not(bootstrap, tls)
        hint = " (start one with ./run.sh broker start, or fix BOOTSTRAP_SERVERS)" if why.startswith("no Kafka") else ""
        raise BrokerUnavailable(why + hint)
    refused = None if isinstance(brokers, str) else sign_in.refusal(brokers)
    if refused:
        raise BrokerUnavailable(refused)


def producer(settings: KafkaSettings, transactional_id: str | None = None) -> KafkaProducer:
    """Idempotent (kafka-python's default) and retried, in order, for as long as BROKER_WAIT_SECONDS:
    a send that fails after that is reported, never dropped in silence. With a transactional id,
    its transactions time out after TRANSACTION_TIMEOUT_MS: a consumer killed in one holds back
    read_committed readers that long at most."""
    compression = settings.producer_compression
    wait_ms = int(settings.broker_wait_seconds * 1000)
    request_timeout_ms = min(30000, wait_ms // 2)  # the delivery timeout must hold one request and the linger
    made = KafkaProducer(
        **options(settings),
        acks="all",
        compression_type=None if compression == "none" else compression,
        linger_ms=settings.producer_linger_ms,
        batch_size=settings.producer_batch_bytes,
        max_request_size=8 * 1024 * 1024,
        request_timeout_ms=request_timeout_ms,
        delivery_timeout_ms=max(wait_ms, request_timeout_ms + settings.producer_linger_ms),
        reconnect_backoff_max_ms=2000,
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        transactional_id=transactional_id,
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
    )
    require(made, ["_sender.force_close", "_sender.join"], "closing the producer within a time limit")
    return made


def checked_sends(producer: KafkaProducer, settings: KafkaSettings, topics: Iterable[str]) -> Sends:
    """Sends to `topics`, with their metadata and max.message.bytes fetched now, so that no send
    waits for metadata during an outage."""
    topics = list(topics)
    for topic in topics:
        producer.partitions_for(topic)
    limits = {topic: max_message_bytes(settings, topic) for topic in topics}
    return Sends(producer, settings.broker_wait_seconds, limits)


def close_producer(producer: KafkaProducer, timeout: float) -> None:
    """Close, giving what is unacknowledged `timeout` seconds; past that it is dropped (nothing that
    depends on it was committed: a restart sends it again). kafka-python 3.0.12's close(timeout)
    raises instead, from the flush it starts with: so flush here, then force the sender closed."""
    try:
        producer.flush(timeout)
    except KafkaTimeoutError:
        producer._sender.force_close()  # drops the unsent batches (checked to exist by `producer`)
        producer._sender.join(timeout=5)
    producer.close(timeout=0)


def consumer(settings: KafkaSettings, frames_topic: str | None = None) -> KafkaConsumer:
    """Records come as record_batches.Record (offset, key, value), decoded a batch at a time; those of
    `frames_topic` as fetch.BatchAhead (a batch's columns, prepared ahead) where native/ is built. Only committed ones (read_committed): the
    input may be written by transactional producers, and a committed offset fetched waits for a
    transaction under way to end (KIP-447)."""
    return rejoins_until_joined(fast_fetch(KafkaConsumer(
        **options(settings),
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_bytes=settings.fetch_max_bytes,
        max_partition_fetch_bytes=settings.max_partition_fetch_bytes,
        max_poll_records=settings.max_poll_records,
        session_timeout_ms=settings.session_timeout_ms,
        reconnect_backoff_max_ms=2000,  # back within 2 s of a broker's return, not 30
    ), frozenset([frames_topic] if frames_topic else [])))


def rejoins_until_joined(consumer: KafkaConsumer) -> KafkaConsumer:
    """Works around a kafka-python 3.0.12 bug that left consumer.py polling forever with no
    partitions (3 starts in 39). A rejoin asked for by changed metadata or subscription (at every
    start: the first join comes before the topic's metadata) is noticed by comparing snapshots that
    the join itself updates. If a poll's time runs out while that join is in flight, the next poll
    finds nothing to do, and the join's assignment is never taken. Here such a rejoin also sets the
    coordinator's own flag, which stays set until a join is taken, as for the rejoins the broker
    asks for."""
    require(consumer, ["_coordinator.need_rejoin", "_coordinator.request_rejoin"], "the rejoin workaround")
    coordinator = consumer._coordinator
    need_rejoin = coordinator.need_rejoin

    def need_rejoin_until_joined() -> bool:
        if need_rejoin():
            coordinator.request_rejoin()
            return True
        return False

    coordinator.need_rejoin = need_rejoin_until_joined
    return consumer


def max_message_bytes(brokers: Brokers, topic: str) -> int | None:
    """The topic's max.message.bytes (the largest record batch it takes, compressed), or None for a
    topic that does not exist yet."""
    admin = KafkaAdminClient(**options(brokers))
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["max.message.bytes"])],
                                       config_filter="all")
    finally:
        admin.close()
    entry = found.get("topic", {}).get(topic, {}).get("max.message.bytes")
    return int(entry["value"]) if entry else None


def read_topic(brokers: Brokers, topic: str, timeout: float = 60.0) -> list[Any]:
    """Every record of `topic` up to its end offsets at the time of the call, outside any group: for
    reading results back (tests, benchmarks) without waiting for a timeout to say "that was all".
    Only what committed transactions wrote (read_committed), up to the last stable offset."""
    reader = KafkaConsumer(**options(brokers), enable_auto_commit=False, fetch_max_bytes=64 << 20,
                           isolation_level="read_committed", metadata_max_age_ms=METADATA_MAX_AGE_MS)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(reader.partitions_for_topic(topic) or ())]
        reader.assign(partitions)
        reader.seek_to_beginning()
        ends = reader.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while any(reader.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: still short of its end offsets after {timeout:.0f} s")
            for batch in reader.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        reader.close()


def topic_specs(settings: KafkaSettings, roles: Iterable[str] = ("TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC")
                ) -> list[NewTopic]:
    """Topics by the setting that names them. The output topic is compacted: the latest record per
    window key is the answer. The dead letters keep the broker's default retention. The state topic
    (STATE: not a setting, named after the group) has a partition per input partition, compacted. The
    partials topic (PARTIALS, named after the output topic) has one, compacted: whoever owns it merges.
    The stored sketches (SKETCHES, named after the output topic) have one, compacted: the latest
    record per window key is what a query unites."""
    specs = {
        "TOPIC": NewTopic(settings.topic, settings.topic_partitions, -1),
        "STATE": NewTopic(state_topic(settings.consumer_group), settings.topic_partitions, -1,
                          topic_configs={"cleanup.policy": "compact", "max.message.bytes": str(MAX_ENTRY_BYTES)}),
        "PARTIALS": NewTopic(partials_topic(settings.output_topic), 1, -1,
                             topic_configs={"cleanup.policy": "compact", "max.message.bytes": str(MAX_ENTRY_BYTES),
                                            "segment.bytes": str(PARTIALS_SEGMENT_BYTES)}),
        "SKETCHES": NewTopic(sketches_topic(settings.output_topic), 1, -1,
                             topic_configs={"cleanup.policy": "compact", "max.message.bytes": str(MAX_ENTRY_BYTES)}),
        "OUTPUT_TOPIC": NewTopic(settings.output_topic, 1, -1, topic_configs={"cleanup.policy": "compact"}),
        "DLQ_TOPIC": NewTopic(settings.dlq_topic, 1, -1),
    }
    return [specs[role] for role in roles]


def create_topics(settings: KafkaSettings, reset: bool = False,
                  roles: Iterable[str] = ("TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "STATE")) -> list[str]:
    """Create the topics that do not exist (after deleting them when `reset`); returns what it did."""
    admin = KafkaAdminClient(**options(settings))
    done = []
    try:
        specs = topic_specs(settings, roles)
        there = set(admin.list_topics())  # an authorizer refuses to create one that exists, without CREATE
        if reset:  # an earlier run's partials and sketches go too, made or not this time
            names = {t.name for t in specs} | {partials_topic(settings.output_topic), sketches_topic(settings.output_topic)}
            doomed = sorted(names & there)
            if doomed:
                admin.delete_topics(doomed)
                _wait_gone(admin, doomed)
                there -= set(doomed)
                done.append(f"deleted {', '.join(doomed)}")
        for spec in (spec for spec in specs if spec.name not in there):
            try:
                admin.create_topics([spec])
                done.append(f"created {spec.name} ({spec.num_partitions} partition(s))")
            except TopicAlreadyExistsError:  # made meanwhile, by another consumer starting
                pass
            except AuthorizationError:
                raise rights.refused(settings, rights.Right("CREATE", "topic", spec.name), "topics") from None
    finally:
        admin.close()
    return done


def _wait_gone(admin: KafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """Topic deletion completes asynchronously; creating the same name too early fails."""
    deadline = time.monotonic() + timeout
    while set(names) & set(admin.list_topics()):
        if time.monotonic() > deadline:
            raise BrokerUnavailable(f"topics {names} were still being deleted after {timeout:.0f} s")
        time.sleep(0.2)
