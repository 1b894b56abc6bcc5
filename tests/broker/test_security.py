"""A broker as managed Kafka runs them: a SASL_SSL listener with a private CA, SCRAM and PLAIN users
and ACLs (devtools/secure_listener.py), on a broker of its own. Through it the scripts count
exactly; each way of getting the security settings wrong is one line naming what to change, with
nothing created on the broker."""
from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tests.broker.test_faults import assert_truth
from tests.conftest import SECURE_USERS as USERS
from tests.helpers import LATE, kafka_env, needs_samples, script
from uniqcount.devtools.localbroker import LocalBroker

pytestmark = [pytest.mark.kafka, needs_samples]


def secured(broker: LocalBroker, **settings: str) -> dict[str, str]:
    """A test's topics and group, reached over SASL_SSL as `admin` unless `settings` say otherwise."""
    assert broker.secure is not None
    return {**kafka_env(f"127.0.0.1:{broker.secure.port}", EXACT_UP_TO="year"), "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_USERNAME": "admin", "SASL_PASSWORD": USERS["admin"],
            "SSL_CAFILE": str(broker.secure.ca(broker.home)), **settings}


def topics(broker: LocalBroker) -> set[str]:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)  # the node's own plaintext listener
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_the_scripts_count_exactly_over_sasl_ssl(secure_broker):
    env = secured(secure_broker)
    produced = script("producer.py", "--input", str(LATE), env=env)
    assert produced.returncode == 0, produced.stderr
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    assert_truth(f"127.0.0.1:{secure_broker.port}", env)  # read back through the plaintext listener


@pytest.mark.parametrize("case, line", [
    ("plaintext at the TLS port", "speaks TLS: set SECURITY_PROTOCOL=SSL or SASL_SSL"),
    ("TLS at the plaintext port", "does not speak TLS: set SECURITY_PROTOCOL=PLAINTEXT or SASL_PLAINTEXT"),
    ("no CA", "is not signed by a CA this client trusts (unable to get local issuer certificate): set SSL_CAFILE"),
    ("wrong password", "the broker refuses admin with SCRAM-SHA-512 ("),
    ("unknown user", "the broker refuses bob with PLAIN (Invalid username or password)"),
])
def test_a_wrong_security_setting_is_one_line_and_changes_nothing(secure_broker, tmp_path, case, line):
    assert secure_broker.secure is not None
    changes = {
        "plaintext at the TLS port": {"SECURITY_PROTOCOL": "PLAINTEXT", "SASL_USERNAME": "", "SASL_PASSWORD": "",
                                      "SSL_CAFILE": ""},
        "TLS at the plaintext port": {"BOOTSTRAP_SERVERS": secure_broker.bootstrap},
        "no CA": {"SSL_CAFILE": ""},
        "wrong password": {"SASL_PASSWORD": "not-the-password"},
        "unknown user": {"SASL_MECHANISM": "PLAIN", "SASL_USERNAME": "bob"},
    }[case]
    env = secured(secure_broker, **changes)
    before = topics(secure_broker)
    sample = tmp_path / "in.jsonl"
    sample.write_bytes(b'{"uid":"a","ts":60}\n')
    for command in (["producer.py", "--input", str(sample)], ["consumer.py", "--exit-at-end", "--quiet"]):
        done = script(*command, env=env)
        lines = done.stderr.decode().strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1 and line in lines[0], (command, lines)
        assert "not-the-password" not in lines[0]
    assert topics(secure_broker) == before


def test_a_password_file_others_can_read_is_refused_before_anything(secure_broker, tmp_path):
    secret = tmp_path / "password"
    secret.write_text(USERS["admin"] + "\n")
    secret.chmod(0o644)
    env = secured(secure_broker, SASL_PASSWORD="", SASL_PASSWORD_FILE=str(secret))
    done = script("producer.py", "--input", str(Path(LATE)), env=env)
    assert done.returncode == 1 and f"chmod 600 {secret}" in done.stderr.decode()
    secret.chmod(0o600)
    assert script("producer.py", "--input", str(Path(LATE)), "--limit", "100", env=env).returncode == 0
