"""The local broker's SASL_SSL listener (devtools/secure_listener.py), on a broker of its own: TLS
that a client checks against the listener's own CA and host name, SCRAM and PLAIN passwords, and
ACLs that give a user only what they grant."""
from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ACL, ACLOperation, ACLPermissionType, NewTopic, ResourcePattern, ResourceType
from kafka.errors import TopicAuthorizationFailedError

from tests.conftest import SECURE_USERS as USERS
from uniqcount.devtools.localbroker import LocalBroker

pytestmark = [pytest.mark.kafka, pytest.mark.serial]  # serial: see run.sh test


def admin(broker: LocalBroker, user: str, mechanism: str = "SCRAM-SHA-512") -> KafkaAdminClient:
    assert broker.secure is not None
    return KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{broker.secure.port}", security_protocol="SASL_SSL",
                            sasl_mechanism=mechanism, sasl_plain_username=user, sasl_plain_password=USERS[user],
                            ssl_cafile=str(broker.secure.ca(broker.home)), ssl_check_hostname=True)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
def test_a_user_signs_in_over_tls_with_each_mechanism(secure_broker, mechanism):
    client = admin(secure_broker, "admin", mechanism)
    try:
        client.create_topics([NewTopic(f"made-with-{mechanism.lower()}", 1, 1)])
        assert f"made-with-{mechanism.lower()}" in client.list_topics()
    finally:
        client.close()


def test_a_user_gets_only_what_acls_grant(secure_broker):
    alice, root = admin(secure_broker, "alice"), admin(secure_broker, "admin")
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            alice.create_topics([NewTopic("alices", 1, 1)])
        root.create_acls([ACL("User:alice", "*", ACLOperation.CREATE, ACLPermissionType.ALLOW,
                              ResourcePattern(ResourceType.TOPIC, "alices"))])
        alice.create_topics([NewTopic("alices", 1, 1)])
    finally:
        alice.close()
        root.close()


def test_the_plaintext_listener_stays_the_nodes_own(secure_broker):
    """Its ANONYMOUS principal is a super user: the other tests' plaintext clients need no ACL."""
    client = KafkaAdminClient(bootstrap_servers=secure_broker.bootstrap)
    try:
        client.create_topics([NewTopic("made-in-plaintext", 1, 1)])
        assert "made-in-plaintext" in client.list_topics()
    finally:
        client.close()
