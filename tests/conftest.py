"""The real Kafka broker for integration tests: the configured one if it answers, else the local one."""
from __future__ import annotations

import socket
import uuid
from typing import Iterator

import pytest

from uniqcount import brokerctl, config
from uniqcount.localbroker import BrokerError


@pytest.fixture(scope="session")
def bootstrap() -> Iterator[str]:
    settings = config.load()
    try:
        started = brokerctl.ensure(settings, allow_docker=False)
    except BrokerError as exc:
        pytest.fail(f"no Kafka broker for the tests: {exc}", pytrace=False)
    yield settings["BOOTSTRAP_SERVERS"]
    if started is not None:
        started.stop()


@pytest.fixture
def topic_name() -> str:
    """A fresh topic name, so tests never see each other's data, even on a shared broker."""
    return f"test-{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
