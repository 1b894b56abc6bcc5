"""A broker as managed Kafka runs them: a SASL_SSL listener with a private CA, SCRAM and PLAIN users
and ACLs (devtools/secure_listener.py), on a broker of its own. Through it the scripts count
exactly; each way of getting the security settings wrong is one line naming what to change, with
nothing created on the broker."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from bench.truth import by_full_parse
from tests.broker.test_readme import README, assert_right, console_lines, latest
from tests.conftest import SECURE_USERS as USERS
from tests.helpers import LATE, kafka_env, needs_samples, script
from uniqcount import REPO
from uniqcount.devtools.localbroker import LocalBroker

pytestmark = [pytest.mark.kafka, pytest.mark.serial, needs_samples]  # serial: see run.sh test


def secured(broker: LocalBroker, **settings: str) -> dict[str, str]:
    """A test's topics and group, reached over SASL_SSL as `admin` unless `settings` say otherwise."""
    assert broker.secure is not None
    return {**kafka_env(f"127.0.0.1:{broker.secure.port}", EXACT_UP_TO="year"), "SECURITY_PROTOCOL": "SASL_SSL",
            "SASL_USERNAME": "admin", "SASL_PASSWORD": USERS["admin"],
            "SSL_CAFILE": str(broker.secure.ca(broker.home)), **settings}


def topics(broker: LocalBroker) -> set[str]:
    """The topics of the broker but its internal ones (the group and transaction logs it makes itself
    when first asked)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)  # the node's own plaintext listener
    try:
        return {topic for topic in admin.list_topics() if not topic.startswith("__")}
    finally:
        admin.close()


def readme_example() -> dict[str, str]:
    """The settings of the README's secured cluster."""
    block = README.read_text().split("A secured cluster", 1)[1].split("```", 2)[1]
    return dict(line.split("=", 1) for line in block.strip().splitlines())


def test_the_readmes_sasl_ssl_example_runs_the_whole_job_and_its_console_command_reads_it(secure_broker):
    """`./run.sh` with the README's settings (its host, CA and user made this broker's), on the
    broker of these tests alone, so with config.env's topic names; then the README's console command."""
    assert secure_broker.secure is not None
    example = readme_example()
    assert set(example) == {"BOOTSTRAP_SERVERS", "SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SSL_CAFILE"}
    env = {**example, "BOOTSTRAP_SERVERS": f"127.0.0.1:{secure_broker.secure.port}", "SASL_USERNAME": "admin",
           "SSL_CAFILE": str(secure_broker.secure.ca(secure_broker.home)), "SASL_PASSWORD": USERS["admin"],
           "SAMPLE_PATH": str(LATE), "EXACT_UP_TO": "year"}
    run = subprocess.run("./run.sh", shell=True, cwd=REPO, capture_output=True, timeout=600, env={**os.environ, **env})
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    assert USERS["admin"] not in run.stderr.decode()
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert_right({key: r for key, r in latest(records).items() if r["final"]}, by_full_parse(LATE))
    shown = [line.split(" ", 1) for line in console_lines(len(records), env)]
    assert all(key == f"{json.loads(value)['granularity']}:{json.loads(value)['window_start']}" for key, value in shown)
    assert latest([json.loads(value) for _, value in shown]) == latest(records)


@pytest.mark.parametrize("case, line", [
    ("plaintext at the TLS port", "speaks TLS: set SECURITY_PROTOCOL=SSL or SASL_SSL"),
    ("TLS at the plaintext port", "does not speak TLS: set SECURITY_PROTOCOL=PLAINTEXT or SASL_PLAINTEXT"),
    ("host name mismatch", "does not name 127.1: connect by a name it holds (BOOTSTRAP_SERVERS), or set SSL_CHECK_HOSTNAME=false"),
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
        "host name mismatch": {"BOOTSTRAP_SERVERS": f"127.1:{secure_broker.secure.port}"},  # 127.0.0.1 by another name
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
