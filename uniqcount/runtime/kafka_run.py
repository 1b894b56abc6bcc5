"""consumer.py from Kafka: the topics made, the objects of a run built from the settings (each owning
its part of the state), the loop run, and the summary said."""
from __future__ import annotations

import argparse
from typing import Any

from kafka import TopicPartition

from uniqcount.core import frames
from uniqcount.core.sketches import Keeping, StoredWindows, small_bytes
from uniqcount.kafka_client import kafka_io, record_batches, rights
from uniqcount.kafka_client.kafka_io import partials_topic, sketches_topic
from uniqcount.kafka_client.probe import any_answers
from uniqcount.kafka_client.rights import Right
from uniqcount.kafka_client.security import tls_context
from uniqcount.kafka_client.sends import SendFailed
from uniqcount.kafka_client.state_topic import state_topic
from uniqcount.runtime import metrics
from uniqcount.runtime.broker_calls import CALL_SECONDS, BrokerCalls
from uniqcount.runtime.committer import Committer, FencedOut
from uniqcount.runtime.config import Settings
from uniqcount.runtime.consumer_loop import ConsumerLoop
from uniqcount.runtime.count_task import CountTask
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.identity import identity
from uniqcount.runtime.merger_task import MergerTask
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.outputs import KafkaDeadLetters, Records
from uniqcount.runtime.progress import status
from uniqcount.runtime.published import Published, rolling_windows, with_users
from uniqcount.runtime.run_state import GroupEvents, Requests
from uniqcount.runtime.state_readers import StateReaders
from uniqcount.runtime.tasks import Task, Tasks


def needs(settings: Settings, own: list[str], transactional_id: str) -> list[Right]:
    """What the consumer does on the brokers (docs/SECURITY.md): reads the input, its own state and
    partials, writes them and the records, dead letters and sketches, in transactions of its id, in
    its group."""
    group = settings.consumer_group
    sketches = [sketches_topic(settings.output_topic)] if settings.sketch_retention else []
    return [*(Right("READ", "topic", topic) for topic in [settings.topic, *own]),
            *(Right("WRITE", "topic", topic) for topic in [settings.output_topic, settings.dlq_topic, *sketches, *own]),
            Right("READ", "group", group), Right("WRITE", "transactional-id", transactional_id, prefix=f"{group}-")]


def run_kafka(args: argparse.Namespace, settings: Settings, collector: metrics.RunCollector | None = None) -> int:
    """`collector`: the metrics served (metrics.listen), given their sources here."""
    kafka_io.require_broker(settings)
    requests, events = Requests(), GroupEvents()
    outage = Outage("consumer", settings.broker_wait_seconds)
    consumer = kafka_io.consumer(settings, settings.topic)
    partitions = len(consumer.partitions_for_topic(settings.topic) or ())  # 0: not there yet
    scaled_out = partitions > 1  # the merger makes the records (merger_task.py)
    me = identity(settings.consumer_group, settings.instance_id)
    transactional_id = me.transactional_id
    partials = partials_topic(settings.output_topic) if scaled_out else None
    sketches = sketches_topic(settings.output_topic) if settings.sketch_retention else None
    state = state_topic(settings.consumer_group)
    sized = settings.replace(topic_partitions=partitions)
    roles = ["OUTPUT_TOPIC", "DLQ_TOPIC", *(["STATE"] if partitions else []), *(["PARTIALS"] if scaled_out else []),
             *(["SKETCHES"] if sketches else [])]
    own = ([state] if partitions else []) + ([partials] if partials else [])  # read back and written
    rights.require(settings, needs(settings, own, transactional_id), "consumer", kafka_io.topic_specs(sized, roles))
    kafka_io.create_topics(sized, roles=roles)
    outputs = [settings.output_topic, settings.dlq_topic, *([partials] if partials else []),
               *([sketches] if sketches else [])]
    sends = kafka_io.checked_sends(kafka_io.producer(settings, transactional_id), settings, outputs)
    stored = StoredWindows(Keeping(settings.sketch_retention, settings.sketch_exact_for, settings.hll_lg_k,
                                   small_bytes(settings.hll_lg_k))) if sketches else None
    rolling = rolling_windows(settings)
    counting = Counting(settings, Records(args.quiet, sends, settings.output_topic, stored, rolling),
                        KafkaDeadLetters(sends, settings.dlq_topic), scaled_out)
    publisher = Published(state, stored, sketches or "", rolling) if stored is not None or rolling is not None else None

    def waiting() -> None:
        if counting.meter.due():
            status(counting.status_line() + outage.line())

    tls = tls_context(settings)
    calls = BrokerCalls(outage, lambda: requests.stop, waiting, lambda: any_answers(settings.bootstrap_servers, tls=tls))
    committer = Committer(sends, transactional_id, calls, settings.checkpoint_seconds,
                          lambda: kafka_io.producer(settings, transactional_id), consumer.group_metadata)

    def task(tp: Any) -> Task:
        if tp.topic == partials:
            return MergerTask(tp, counting.new_counter().sets, partitions, counting.records, state, publisher,
                              with_users(settings))
        return CountTask(tp, counting, state, partials, settings.input_keyed_by_uid, None if partials else publisher)

    readers = StateReaders(settings, consumer, calls, partitions, sends)
    tasks = Tasks(consumer, calls, task, readers, committer.ready)
    loop = ConsumerLoop(consumer, committer, tasks, counting, outage, requests, events, settings.topic, partitions,
                        TopicPartition(partials, 0) if partials else None, settings.checkpoint_seconds,
                        settings.idle_flush_seconds, args.exit_at_end)
    status(f"consumer: exactly once into {settings.output_topic} and {settings.dlq_topic} (read them with "
           f"read_committed): a checkpoint every {settings.checkpoint_seconds:g} s commits records, dead letters, "
           f"state ({state}) and offsets in one transaction (id {transactional_id})")
    status(f"consumer: {record_batches.DECODER}; {frames.SCANNER}")
    if scaled_out and settings.emit_early_every:
        status(f"consumer: EMIT_EARLY_EVERY={settings.emit_early_every:g} is for a topic of one partition: of "
               f"{partitions}, the merger publishes final records and corrections only")
    if collector is not None:
        collector.sources = metrics.Sources(counting, committer, tasks, events, lambda: loop.lags)
        status(f"consumer: metrics on http://0.0.0.0:{settings.metrics_port}/metrics (Prometheus format)")
    consumer.subscribe([settings.topic, *([partials] if partials else [])], listener=events)
    try:
        loop.run()
    except (SendFailed, FencedOut):
        committer.close(0)
        raise
    finally:
        if collector is not None:  # the server's thread lets go of the run's objects (and their sketches)
            collector.sources = None
        consumer.close(autocommit=False, timeout_ms=int(CALL_SECONDS * 1000))
        readers.close()
    committer.close(CALL_SECONDS)
    me.release()  # after the producer's close: a restart taking the slot finds nothing left open
    rewound = f"; went back to the last checkpoint {loop.state.rewinds} time(s)" if loop.state.rewinds else ""
    status(counting.summary() + f"; {committer.commits:,} checkpoints" + rewound +
           " (the counts are the partitions' own, from the start of their streams, through restores)")
    return 0
