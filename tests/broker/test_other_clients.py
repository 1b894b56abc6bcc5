"""Topics another client wrote, and output another client reads: librdkafka (through confluent-kafka,
a test dependency only), the C client most non-Java producers use. Its producers write the late
sample with every codec, keys, headers and null values, and a transactional one aborts half of its
transactions before writing the same frames again; consumer.py counts every window exactly, and
librdkafka reads the output (read_committed) record for record as kafka-python does."""
from __future__ import annotations

import confluent_kafka
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from tests.broker.test_faults import assert_truth, sample_lines
from tests.helpers import kafka_env, needs_samples, script
from uniqcount.kafka_client.kafka_io import read_topic

pytestmark = [pytest.mark.kafka, needs_samples]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
CHUNK = 2500  # lines per turn of one producer; each turn is flushed before the next, so the order holds


def librdkafka_producers(bootstrap: str, tag: str) -> list:
    """One idempotent producer per codec, and a transactional one (snappy) last."""
    made = [confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                                      "enable.idempotence": True, "linger.ms": 5}) for codec in CODECS]
    transactional = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "compression.type": "snappy",
                                              "transactional.id": f"librdkafka-{tag}", "linger.ms": 5})
    transactional.init_transactions(30)
    return [*made, transactional]


def send(producer, topic: str, lines: list[bytes], first: int) -> None:
    for n, line in enumerate(lines, first):  # a key on every other frame, a header on every seventh
        producer.produce(topic, value=line, key=None if n % 2 else str(n).encode(),
                         headers=[("source", b"librdkafka")] if n % 7 == 0 else None)
        producer.poll(0)


def test_every_codec_and_aborted_transactions_of_librdkafka_count_exactly(bootstrap):
    env = kafka_env(bootstrap, EXACT_UP_TO="year")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(env["TOPIC"], 1, 1)])
    finally:
        admin.close()
    lines = sample_lines()
    producers = librdkafka_producers(bootstrap, env["TOPIC"])
    *plain, transactional = producers
    for n in range(3):  # null values (tombstones): dead letters, not frames of any window
        plain[0].produce(env["TOPIC"], value=None, key=f"gone-{n}".encode())
    plain[0].flush(30)
    for turn, first in enumerate(range(0, len(lines), CHUNK)):
        chunk, producer = lines[first:first + CHUNK], producers[turn % len(producers)]
        if producer is transactional:
            for commit in ([False, True] if turn % 2 else [True]):
                transactional.begin_transaction()
                send(transactional, env["TOPIC"], chunk, first)
                (transactional.commit_transaction if commit else transactional.abort_transaction)(30)
        else:
            send(producer, env["TOPIC"], chunk, first)
            assert producer.flush(30) == 0, "librdkafka did not deliver every frame"
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    assert_truth(bootstrap, env)
    assert len(list(read_topic(bootstrap, env["DLQ_TOPIC"]))) == 3
    assert f"frames in {len(lines) + 3:,} = counted {len(lines):,}" in consumed.stderr.decode(), consumed.stderr.decode()[-2000:]


def test_librdkafka_reads_the_output_as_kafka_python_does(bootstrap, tmp_path):
    """The output's transactions (records with their control batches) read committed by the other
    client: the same values, in the same order."""
    env = kafka_env(bootstrap)
    sample = tmp_path / "in.jsonl"
    sample.write_bytes(b"\n".join(sample_lines()[:20000]) + b"\n")
    assert script("producer.py", "--input", str(sample), env=env).returncode == 0
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    expected = [bytes(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])]
    reader = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{env['TOPIC']}",
                                       "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                                       "enable.auto.commit": False})
    got: list[bytes] = []
    try:
        reader.subscribe([env["OUTPUT_TOPIC"]])
        idle = 0
        while len(got) < len(expected) and idle < 30:
            message = reader.poll(1.0)
            if message is None:
                idle += 1
                continue
            assert message.error() is None, message.error()
            got.append(message.value())
    finally:
        reader.close()
    assert expected and got == expected
