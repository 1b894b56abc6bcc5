"""Integration tests through a real Apache Kafka broker (see conftest.bootstrap)."""
from __future__ import annotations

import base64
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from uniqcount import REPO
from uniqcount.devtools.localbroker import BrokerError, classpath, free_ports, new_cluster_id

pytestmark = pytest.mark.kafka


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> dict[tuple[int, int], tuple]:
    """Send with acks=all; returns (partition, offset) -> (key, value) as acknowledged by the broker."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    futures = [(producer.send(topic, key=k, value=v), (k, v)) for k, v in messages]
    producer.flush()
    acked = {}
    for future, message in futures:
        meta = future.get(timeout=30)
        acked[(meta.partition, meta.offset)] = message
    producer.close()
    return acked


def consume_all(bootstrap: str, topic: str, expected: int) -> dict[tuple[int, int], tuple]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=15000)
    got = {}
    for record in consumer:
        got[(record.partition, record.offset)] = (record.key, record.value)
        if len(got) == expected:
            break
    consumer.close()
    return got


def random_messages(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    rng = random.Random(seed)
    return [(rng.randbytes(rng.randint(1, 32)), rng.randbytes(rng.choice([0, 1, 100, 2000, 20000])))
            for _ in range(n)]


def test_create_topics(bootstrap, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic_name, 3, 1), NewTopic(topic_name + "-compact", 1, 1,
                                                               topic_configs={"cleanup.policy": "compact"})])
    described = {t["name"]: t for t in admin.describe_topics([topic_name, topic_name + "-compact"])}
    assert len(described[topic_name]["partitions"]) == 3
    assert len(described[topic_name + "-compact"]["partitions"]) == 1
    admin.close()


def test_10000_messages_round_trip_byte_exact(bootstrap, topic_name):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic_name, 3, 1)])
    admin.close()
    messages = random_messages(10_000, seed=1)
    acked = produce(bootstrap, topic_name, messages)
    assert sorted(acked.values()) == sorted(messages)
    assert consume_all(bootstrap, topic_name, len(messages)) == acked


def brokerctl(home: Path, port: int, controller_port: int, *args: str) -> subprocess.CompletedProcess:
    """`./run.sh broker ARGS`, the README's commands, on a broker of the test's own."""
    env = dict(os.environ, LOCAL_BROKER_DIR=str(home), BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
               LOCAL_CONTROLLER_PORT=str(controller_port), LOCAL_BROKER_HEAP="384m")
    return subprocess.run(["./run.sh", "broker", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)


def test_acknowledged_messages_survive_stop_and_crash(tmp_path):
    """Own throwaway broker: start, idempotent start, clean stop, restart, SIGKILL, restart."""
    ports = free_ports(2)
    ctl = lambda *args: brokerctl(tmp_path, *ports, *args)  # noqa: E731
    bootstrap = f"127.0.0.1:{ports[0]}"
    try:
        assert ctl("start").returncode == 0
        again = ctl("start")
        assert again.returncode == 0 and "already running" in again.stdout
        assert ctl("status").returncode == 0
        logs = ctl("logs")
        assert logs.returncode == 0 and "(kafka." in logs.stdout, logs.stdout[-2000:]  # its log4j lines

        acked = produce(bootstrap, "survive", random_messages(3000, seed=2))
        assert "stopped" in ctl("stop").stdout
        status = ctl("status")
        assert status.returncode == 3 and "not running" in status.stdout

        assert ctl("start").returncode == 0
        acked |= produce(bootstrap, "survive", random_messages(3000, seed=3))
        pid = int((tmp_path / "broker.pid").read_text())
        os.kill(pid, signal.SIGKILL)  # a crash: no clean shutdown
        assert ctl("start").returncode == 0

        assert consume_all(bootstrap, "survive", len(acked)) == acked
    finally:
        ctl("stop")
    assert ctl("status").returncode == 3


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_unreachable_configured_broker_is_not_replaced(tmp_path):
    env = dict(os.environ, BOOTSTRAP_SERVERS="broker.invalid:9092", LOCAL_BROKER_DIR=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "uniqcount.devtools.brokerctl", "ensure"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "does not answer; not starting a local one" in one_error_line(result)
    assert not (tmp_path / "broker.pid").exists()


def test_port_taken(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        line = one_error_line(brokerctl(tmp_path, squatter.getsockname()[1], free_ports(1)[0], "start"))
    assert "is taken by another process" in line


def test_broker_dying_on_start_points_to_its_log(tmp_path):
    port, controller_port = free_ports(2)
    env = dict(os.environ, LOCAL_BROKER_DIR=str(tmp_path), BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
               LOCAL_CONTROLLER_PORT=str(controller_port), LOCAL_BROKER_HEAP="1k")
    result = subprocess.run([sys.executable, "-m", "uniqcount.devtools.brokerctl", "start"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    line = one_error_line(result)
    assert "exited during start-up" in line and str(tmp_path / "logs") in line


def _path_without(*commands: str) -> str:
    """PATH without every folder that holds one of these commands (python itself runs by full path)."""
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not any(shutil.which(c, path=d) for c in commands))


def test_no_java(tmp_path):
    port, controller_port = free_ports(2)
    env = dict(os.environ, PATH=_path_without("java"), LOCAL_BROKER_DIR=str(tmp_path),
               BOOTSTRAP_SERVERS=f"127.0.0.1:{port}", LOCAL_CONTROLLER_PORT=str(controller_port))
    result = subprocess.run([sys.executable, "-m", "uniqcount.devtools.brokerctl", "start"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert "Java not found" in one_error_line(result)


def test_no_maven_and_no_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", _path_without("mvn"))
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    with pytest.raises(BrokerError, match="no Kafka jars yet and Maven not found"):
        classpath(tmp_path / "lib")


def test_kafka_home_without_jars(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(BrokerError, match="holds no Kafka jars"):
        classpath()


def test_cluster_id_never_starts_with_a_dash():
    """An id starting with '-' made the storage format fail (CI saw it; 1 fresh machine in 64)."""
    dash_first = bytes([0xF8]) + bytes(15)      # 0xF8 >> 2 == 62, '-' in URL-safe base64
    plain = bytes(range(16))
    drawn = iter([dash_first, dash_first, plain])
    assert base64.urlsafe_b64encode(dash_first).startswith(b"-")
    assert new_cluster_id(lambda: next(drawn)) == base64.urlsafe_b64encode(plain).decode().rstrip("=")
    assert len(new_cluster_id()) == 22
