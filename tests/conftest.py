"""The real Kafka broker for integration tests: the configured one if it answers, else the local one;
and a secured one of their own (a SASL_SSL listener, SECURE_USERS) for the tests of security."""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
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


RUN_DIR = "UNIQCOUNT_TEST_RUN"  # a folder shared by the processes of one run (pytest-xdist's workers)


def _worker() -> bool:
    return bool(os.environ.get("PYTEST_XDIST_WORKER"))


def pytest_configure() -> None:
    if not _worker():
        os.environ[RUN_DIR] = tempfile.mkdtemp(prefix="uniqcount-tests-")


@pytest.fixture(scope="session")
def bootstrap() -> str:
    """The broker, made sure of once per run: the first process to need it starts the local one
    if none answers, under a lock, and writes down what it found; the others read that."""
    settings = config.load()
    record = Path(os.environ[RUN_DIR]) / "broker.json"
    with open(record.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            try:
                started = brokerctl.ensure(settings, allow_docker=False)
            except BrokerError as exc:
                pytest.fail(f"no Kafka broker for the tests: {exc}", pytrace=False)
            record.write_text(json.dumps({"started": started is not None,
                                          "before": sorted(_topics(settings.bootstrap_servers))}))
    return settings.bootstrap_servers


def pytest_unconfigure() -> None:
    """Once every process of the run is done (the one that is no worker): the test topics go, and
    the local broker stops if the run started it."""
    if _worker() or RUN_DIR not in os.environ:
        return
    run = Path(os.environ.pop(RUN_DIR))
    record = run / "broker.json"
    if record.exists():
        found = json.loads(record.read_text())
        settings = config.load()
        _delete_new_test_topics(settings.bootstrap_servers, set(found["before"]))
        if found["started"]:
            brokerctl.local_broker(settings).stop()
    shutil.rmtree(run, ignore_errors=True)


# what topic_name and helpers.kafka_env name their topics
TEST_TOPIC = re.compile(r"(test-[0-9a-f]{12}(-compact)?|(events|out|dlq)-[0-9a-f]{8}|out-[0-9a-f]{8}-(partials|sketches)|group-[0-9a-f]{8}-state)")


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

