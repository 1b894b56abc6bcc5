"""The real Kafka broker for integration tests: the configured one if it answers, else the local one;
and a secured one of their own (a SASL_SSL listener, SECURE_USERS) for the tests of security."""
from __future__ import annotations

import re
import uuid
from typing import Iterator

import pytest
from kafka import KafkaAdminClient

from uniqcount.devtools import brokerctl
from uniqcount.devtools.localbroker import BrokerError, LocalBroker, free_ports
from uniqcount.devtools.secure_listener import SecureListener
from uniqcount.runtime import config

SECURE_USERS = {"admin": "admin-secret", "alice": "alice-secret"}


@pytest.fixture(scope="session")
def secure_broker(tmp_path_factory, bootstrap) -> Iterator[LocalBroker]:  # bootstrap first: the jars, once
    port, controller_port, secure_port = free_ports(3)
    made = LocalBroker(home=tmp_path_factory.mktemp("secure"), port=port, controller_port=controller_port,
                       heap="384m", secure=SecureListener(secure_port, SECURE_USERS))
    made.start()
    yield made
    made.stop()


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    settings = config.load()
    try:
        started = brokerctl.ensure(settings, allow_docker=False)
    except BrokerError as exc:
        pytest.fail(f"no Kafka broker for the tests: {exc}", pytrace=False)
    before = _topics(settings.bootstrap_servers)
    yield settings.bootstrap_servers
    _delete_new_test_topics(settings.bootstrap_servers, before)
    if started is not None:
        started.stop()


# what topic_name and helpers.kafka_env name their topics
TEST_TOPIC = re.compile(r"(test-[0-9a-f]{12}(-compact)?|(events|out|dlq)-[0-9a-f]{8}|out-[0-9a-f]{8}-partials|group-[0-9a-f]{8}-state)")


def _topics(bootstrap: str) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def _delete_new_test_topics(bootstrap: str, before: set[str]) -> None:
    """Every test makes topics of its own; left on a long-lived dev broker they pile up by the
    hundred and slow every later run (906 of them once made the suite 4x slower). Only topics this
    session made, by the tests' names, go."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        doomed = [t for t in set(admin.list_topics()) - before if TEST_TOPIC.fullmatch(t)]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name, so tests never see each other's data, even on a shared broker."""
    return f"test-{uuid.uuid4().hex[:12]}"

