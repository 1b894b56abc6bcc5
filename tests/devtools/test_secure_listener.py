"""The local broker's SASL_SSL listener (devtools/secure_listener.py), on a broker of its own: TLS
that a client checks against the listener's own CA and host name, SCRAM and PLAIN passwords, and
ACLs that give a user only what they grant."""
from __future__ import annotations

from typing import Iterator

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ACL, ACLOperation, ACLPermissionType, NewTopic, ResourcePattern, ResourceType
from kafka.errors import TopicAuthorizationFailedError

from uniqcount.devtools.localbroker import LocalBroker, free_ports
from uniqcount.devtools.secure_listener import SecureListener

pytestmark = pytest.mark.kafka
USERS = {"admin": "admin-secret", "alice": "alice-secret"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory, bootstrap) -> Iterator[LocalBroker]:  # bootstrap first: the jars are fetched once
    port, controller_port, secure_port = free_ports(3)
    made = LocalBroker(home=tmp_path_factory.mktemp("secure"), port=port, controller_port=controller_port,
                       heap="384m", secure=SecureListener(secure_port, USERS))
    made.start()
    yield made
    made.stop()


def admin(broker: LocalBroker, user: str, mechanism: str = "SCRAM-SHA-512") -> KafkaAdminClient:
    assert broker.secure is not None
    return KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.secure.port}", security_protocol="SASL_SSL",
                            sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=USERS[user],
                            ssl_cafile=str(broker.secure.ca(broker.home)), ssl_check_hostname=True)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_a_user_signs_in_over_tls_with_each_mechanism(broker, mechanism):
    client = admin(broker, "admin", mechanism)
    try:
        client.create_topics([NewTopic(f"made-with-{mechanism.lower()}", 1, 1)])
        assert f"made-with-{mechanism.lower()}" in client.list_topics()
    finally:
        client.close()


def test_a_user_gets_only_what_acls_grant(broker):
    alice, root = admin(broker, "alice"), admin(broker, "admin")
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            alice.create_topics([NewTopic("alices", 1, 1)])
        root.create_acls([ACL("User:alice", "*", ACLOperation.CREATE, ACLPermissionType.ALLOW,
                              ResourcePattern(ResourceType.TOPIC, "alices"))])
        alice.create_topics([NewTopic("alices", 1, 1)])
    finally:
        alice.close()
        root.close()


def test_the_plaintext_listener_stays_the_nodes_own(broker):
    """Its ANONYMOUS principal is a super user: the other tests' plaintext clients need no ACL."""
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        client.create_topics([NewTopic("made-in-plaintext", 1, 1)])
        assert "made-in-plaintext" in client.list_topics()
    finally:
        client.close()
