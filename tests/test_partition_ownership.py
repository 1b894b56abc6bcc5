"""Several input partitions through the real broker: one consumer counts each partition on its own
clock and publishes one exact answer; consumers that own only some partitions say so."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from tests.helpers import (LATE, kafka_env, latest_per_key, needs_samples, read_topic, script, start_consumer,
                           truth_windows)

pytestmark = [pytest.mark.kafka, needs_samples]


def late_frames(summary: str) -> int:
    return int(re.search(r"counted [\d,]+ \(late ([\d,]+)\)", summary).group(1).replace(",", ""))


def exact(records: list[dict], granularity: str) -> list[tuple[int, int, int]]:
    return [(r["window_start"], r["unique_users"], r["frames"]) for r in latest_per_key(records, granularity)]


def truth(granularity: str) -> list[tuple[int, int, int]]:
    return [(t["window_start"], t["unique_users"], t["frames"]) for t in truth_windows(LATE, granularity)]


def four_partitions(bootstrap: str, **settings: str) -> dict[str, str]:
    """The test's settings, its input topic made with 4 partitions."""
    env = kafka_env(bootstrap, **settings)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(env["TOPIC"], 4, 1)])
    finally:
        admin.close()
    return env


def test_four_partitions_and_one_consumer_give_exact_counts_and_no_more_late_frames(bootstrap):
    one = script("consumer.py", "--input", str(LATE), "--quiet")  # the same frames as one partition
    assert one.returncode == 0, one.stderr
    env = four_partitions(bootstrap)
    produced = script("producer.py", "--input", str(LATE), env=env)
    assert produced.returncode == 0, produced.stderr
    assert {m.partition for m in read_topic(bootstrap, env["TOPIC"])} == {0, 1, 2, 3}
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    records = [json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])]
    assert not any(r.get("partial") for r in records)
    for granularity in ("minute", "hour"):
        assert exact(records, granularity) == truth(granularity)
    assert late_frames(consumed.stderr.decode()) <= late_frames(one.stderr.decode())


def wait_for_line(process: subprocess.Popen, lines: list[str], text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        assert process.poll() is None, f"the consumer ended: {lines}"
        assert time.monotonic() < deadline, f"no {text!r} in {lines}"
        time.sleep(0.2)


def collect(process: subprocess.Popen) -> list[str]:
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(line.decode() for line in process.stderr), daemon=True).start()
    return lines


def test_consumers_that_share_a_topic_mark_their_records_partial(bootstrap):
    """Two consumers of one group on four partitions: neither publishes a record that looks like the
    whole topic's answer, and each says so in one line."""
    env = four_partitions(bootstrap, GRANULARITIES="minute,hour")
    consumers = [start_consumer({**env, "INSTANCE_ID": f"c{n}"}, stderr=subprocess.PIPE) for n in range(2)]
    try:
        logs = [collect(c) for c in consumers]
        for consumer, lines in zip(consumers, logs):
            wait_for_line(consumer, lines, "marked partial")
        produced = script("producer.py", "--input", str(LATE), env=env)
        assert produced.returncode == 0, produced.stderr
        for consumer in consumers:
            consumer.send_signal(signal.SIGUSR1)
        for consumer in consumers:
            assert consumer.wait(timeout=120) == 0
    finally:
        for consumer in consumers:
            consumer.kill()
    messages = read_topic(bootstrap, env["OUTPUT_TOPIC"])
    assert messages
    owned = set()
    for message in messages:
        record = json.loads(message.value)
        assert record["partial"] is True and set(record["partitions"]) < {0, 1, 2, 3}
        assert message.key.decode() == (f"{record['granularity']}:{record['window_start']}:partial:"
                                        + ",".join(map(str, record["partitions"])))
        owned.add(tuple(record["partitions"]))
    assert len(owned) >= 2, f"both consumers published: {owned}"
