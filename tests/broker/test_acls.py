"""The ACLs of docs/SECURITY.md, read from the page itself, are what the scripts need: a user granted
exactly those counts exactly through a SASL_SSL listener (with a consumer SIGKILLed and restarted),
and with any one of them taken away the script stops with the one line that names it, having
created nothing."""
from __future__ import annotations

import argparse
import shlex
import signal
import time
from dataclasses import dataclass

import pytest
from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)

from tests.broker.test_faults import assert_truth, wait_committed
from tests.broker.test_security import secured, topics
from tests.conftest import SECURE_USERS
from tests.helpers import LATE, script, start_consumer
from uniqcount import REPO
from uniqcount.kafka_client.kafka_io import partials_topic, sketches_topic, topic_specs
from uniqcount.kafka_client.state_topic import state_topic
from uniqcount.runtime import config

pytestmark = [pytest.mark.kafka, pytest.mark.serial]  # serial: see run.sh test
DOCS = REPO / "docs" / "SECURITY.md"
KINDS = {"topic": ResourceType.TOPIC, "group": ResourceType.GROUP, "transactional-id": ResourceType.TRANSACTIONAL_ID}


@dataclass(frozen=True)
class Grant:
    operation: str
    kind: str
    name: str
    prefixed: bool

    def acl(self, user: str) -> ACL:
        pattern = ACLResourcePatternType.PREFIXED if self.prefixed else ACLResourcePatternType.LITERAL
        return ACL(f"User:{user}", "*", ACLOperation[self.operation], ACLPermissionType.ALLOW,
                   ResourcePattern(KINDS[self.kind], self.name, pattern))


def documented(script_name: str, names: dict[str, str]) -> list[Grant]:
    """The kafka-acls commands of the page's block for `script_name`, one Grant per operation, with
    the page's names (config.env's defaults, user `uniqcount`) replaced by `names`."""
    block = DOCS.read_text().split(f"**{script_name}**", 1)[1].split("```", 2)[1]
    parser = argparse.ArgumentParser(exit_on_error=False)
    for flag in ("--bootstrap-server", "--command-config", "--allow-principal", *(f"--{kind}" for kind in KINDS)):
        parser.add_argument(flag)
    parser.add_argument("--add", action="store_true")
    parser.add_argument("--operation", action="append", required=True)
    parser.add_argument("--resource-pattern-type", choices=["literal", "prefixed"], default="literal")
    grants = []
    for line in block.strip().splitlines():
        words = shlex.split(line)
        assert words[0] == "kafka-acls", line
        args = parser.parse_args(words[1:])
        assert args.add and args.allow_principal == "User:uniqcount", line
        [(kind, name)] = [(kind, getattr(args, kind.replace("-", "_"))) for kind in KINDS
                          if getattr(args, kind.replace("-", "_"))]
        grants += [Grant(operation, kind, names[name], args.resource_pattern_type == "prefixed")
                   for operation in args.operation]
    assert grants, f"no kafka-acls command for {script_name} in {DOCS}"
    return grants


def everything_of(user: str) -> ACLFilter:
    return ACLFilter(f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY,
                     ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def acls_now(admin: KafkaAdminClient, user: str) -> set[tuple]:
    found, _ = admin.describe_acls(everything_of(user))
    return {(a.operation, a.resource_pattern.resource_type, a.resource_pattern.resource_name) for a in found}


def settle(admin: KafkaAdminClient, user: str, grants: list[Grant]) -> None:
    """Until the broker's authorizer holds exactly `grants` for `user` (ACLs apply asynchronously)."""
    want = {(ACLOperation[g.operation], KINDS[g.kind], g.name) for g in grants}
    deadline = time.monotonic() + 30
    while acls_now(admin, user) != want:
        assert time.monotonic() < deadline, f"ACLs of {user} still not {want}"
        time.sleep(0.1)


def test_exactly_the_documented_acls_are_enough_and_each_one_missing_is_named(secure_broker, tmp_path):
    user = "alice"
    env = secured(secure_broker, SASL_USERNAME=user, SASL_PASSWORD=SECURE_USERS[user], CHECKPOINT_SECONDS="1",
                  TOPIC_PARTITIONS="2")
    group, output = env["CONSUMER_GROUP"], env["OUTPUT_TOPIC"]
    names = {"events": env["TOPIC"], "events-output": output, "events-dlq": env["DLQ_TOPIC"],
             "uniqcount-state": state_topic(group), "events-output-partials": partials_topic(output),
             "events-output-sketches": sketches_topic(output),
             "uniqcount": group, "uniqcount-": f"{group}-"}
    producing, consuming = documented("producer.py", names), documented("consumer.py", names)
    admin = KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap)  # the node's own listener: a super user
    try:
        settings = config.load().replace(**{k.lower(): v for k, v in env.items() if k in
                                            ("TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "CONSUMER_GROUP")},
                                         topic_partitions=2)
        admin.create_topics(topic_specs(settings, ["TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "STATE", "PARTIALS", "SKETCHES"]))
        before = topics(secure_broker)

        admin.delete_acls([everything_of(user)])  # other tests on this process's secure broker grant alice too
        settle(admin, user, [])
        admin.create_acls([g.acl(user) for g in producing])
        settle(admin, user, producing)
        produced = script("producer.py", "--input", str(LATE), env=env)
        assert produced.returncode == 0, produced.stderr

        for missing in consuming:
            granted = [g for g in consuming if g != missing]
            admin.delete_acls([ACLFilter(f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY,
                                         ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))])
            admin.create_acls([g.acl(user) for g in granted])
            settle(admin, user, granted)
            done = script("consumer.py", "--exit-at-end", "--quiet", env=env)
            lines = done.stderr.decode().strip().splitlines()
            kind = missing.kind.replace("-", " ")
            named = f"User:{user} is not allowed to {missing.operation} {kind} "
            assert done.returncode == 1 and len(lines) == 1 and named in lines[0], (missing, lines)
            assert f"--operation {missing.operation} --{missing.kind} {missing.name}" in lines[0], lines
            assert topics(secure_broker) == before

        admin.create_acls([g.acl(user) for g in consuming])
        settle(admin, user, consuming)
        log = tmp_path / "first.log"
        first = start_consumer(env, stderr=log.open("wb"))
        try:
            wait_committed(secure_broker.bootstrap, env)
        except AssertionError:
            raise AssertionError(log.read_text()) from None
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        again = script("consumer.py", "--exit-at-end", "--quiet", env=env)
        assert again.returncode == 0, again.stderr
        assert "restored" in again.stderr.decode(), again.stderr  # it went on from the checkpoint
        assert_truth(secure_broker.bootstrap, env)
        assert topics(secure_broker) == before
    finally:
        admin.close()
