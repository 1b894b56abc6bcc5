"""docker-compose.yml declares the broker the README promises, on the version of the local broker."""
from __future__ import annotations

import base64

import yaml

from uniqcount import REPO
from uniqcount.devtools.localbroker import kafka_version


def _kafka_service() -> dict:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert set(compose["services"]) == {"kafka"}, "one broker, nothing else (no ZooKeeper)"
    return compose, compose["services"]["kafka"]


def test_same_kafka_version_as_local_broker():
    _, kafka = _kafka_service()
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    assert kafka_version().startswith("4.1.")


def test_kraft_single_node_reachable_from_host():
    compose, kafka = _kafka_service()
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "9092:9092" in kafka["ports"]
    assert "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16, "Kafka cluster ids are 16 bytes"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert env[key] == 1, "a single node needs replication factor 1 for internal topics"
    assert "healthcheck" in kafka and kafka["healthcheck"]["test"]
    volume, _, mount = kafka["volumes"][0].partition(":")
    assert volume in compose["volumes"], "data lives in a named volume"
    assert mount == env["KAFKA_LOG_DIRS"]


def test_readme_promises_match():
    readme = (REPO / "README.md").read_text()
    assert f"Kafka {kafka_version()}" in readme
    assert "docker compose up -d" in readme
    assert "localhost:9092" in readme
