"""Is this client allowed what it is about to do? On a cluster with an authorizer, the rights a script
needs (docs/SECURITY.md lists them) are checked once at start, before anything is created, so that a
missing ACL is one line naming the resource, the operation and the `kafka-acls` command that grants
it, not a `TopicAuthorizationFailedError` halfway through a run.

The broker says what a client may do: the topics' authorized operations in a metadata response
(KIP-430), a group's in DescribeGroups; a topic that does not exist yet is tried with CreateTopics
`validate_only`, a transactional id with DescribeTransactions (WRITE implies DESCRIBE, and with
neither the broker refuses). A broker without an authorizer allows everything, so this costs three
small requests at start and nothing after.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import (
    AuthorizationError,
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from uniqcount.kafka_client.security import ConnectionSettings, options, sasl

COORDINATOR_WAIT_SECONDS = 30


class NotAllowed(Exception):
    """One line for the user: a right the brokers do not grant this client."""


@dataclass(frozen=True)
class Right:
    """An operation on a Kafka resource: `kind` is topic, group or transactional-id (kafka-acls'
    flags). `prefix`: grant it for every name that starts with this (a consumer's transactional ids
    are `<CONSUMER_GROUP>-...`)."""
    operation: str
    kind: str
    name: str
    prefix: str = ""

    def grant(self, principal: str, bootstrap: str) -> str:
        resource = f"{self.prefix} --resource-pattern-type prefixed" if self.prefix else self.name
        return (f"kafka-acls --bootstrap-server {bootstrap} --command-config admin.properties --add "
                f"--allow-principal {principal} --operation {self.operation} --{self.kind} {resource}")


def principal(settings: ConnectionSettings) -> str:
    """Who the brokers see: the SASL user; with TLS client certificates, their distinguished name."""
    if sasl(settings):
        return f"User:{settings.sasl_username}"
    return "User:<your certificate's DN>" if settings.ssl_certfile else "User:ANONYMOUS"


def require(settings: ConnectionSettings, rights: Iterable[Right], who: str,
            to_create: Iterable[NewTopic] = ()) -> None:
    """Raise NotAllowed for the first of `rights` the brokers refuse (topics that do not exist and
    are in `to_create` need CREATE instead)."""
    admin = KafkaAdminClient(**options(settings))
    try:
        missing = _first_missing(admin, list(rights), {t.name: t for t in to_create})
    finally:
        admin.close()
    if missing is not None:
        raise refused(settings, missing, who)


def refused(settings: ConnectionSettings, right: Right, who: str) -> NotAllowed:
    user = principal(settings)
    return NotAllowed(f"{who}: {user} is not allowed to {right.operation} {right.kind.replace('-', ' ')} {right.name}: "
                      f"grant it with {right.grant(user, settings.bootstrap_servers)} (docs/SECURITY.md)")


def _first_missing(admin: KafkaAdminClient, rights: list[Right], to_create: dict[str, NewTopic]) -> Right | None:
    topics = {r.name for r in rights if r.kind == "topic"}
    described = {t["name"]: t for t in admin.describe_topics(sorted(topics))} if topics else {}
    for right in rights:
        if right.kind == "topic":
            missing = _topic_missing(admin, right, described[right.name], to_create.get(right.name))
        elif right.kind == "group":
            missing = _group_missing(admin, right)
        else:
            missing = _transactional_id_missing(admin, right)
        if missing is not None:
            return missing
    return None


def _topic_missing(admin: KafkaAdminClient, right: Right, topic: dict[str, Any], spec: NewTopic | None
                   ) -> Right | None:
    if topic["error_code"] == UnknownTopicOrPartitionError.errno and spec is not None:
        try:
            admin.create_topics([spec], validate_only=True)
        except TopicAlreadyExistsError:  # made since it was described
            return None
        except AuthorizationError:
            return Right("CREATE", "topic", right.name)
        return None
    if topic["error_code"] == TopicAuthorizationFailedError.errno:
        return right
    allowed = topic.get("authorized_operations")
    return right if allowed is not None and right.operation not in allowed else None


def _group_missing(admin: KafkaAdminClient, right: Right) -> Right | None:
    try:
        group = _asked(lambda: admin.describe_groups([right.name])[right.name])
    except AuthorizationError:
        return right
    allowed = group and group.get("authorized_operations")  # None: a group that does not exist yet
    return right if allowed and right.operation not in allowed else None


def _transactional_id_missing(admin: KafkaAdminClient, right: Right) -> Right | None:
    try:
        _asked(lambda: admin.describe_transactions([right.name]))
    except AuthorizationError:
        return right
    return None  # an id never used is not found: the broker looked, so it was allowed to


def _asked(call: Callable[[], Any]) -> Any:
    """`call`'s answer once the coordinator it needs is there (a fresh cluster makes the group and
    transaction logs on the first question); None if it never answers, or answers with another error:
    the clients' own start then says what is wrong. AuthorizationError goes up."""
    deadline = time.monotonic() + COORDINATOR_WAIT_SECONDS
    while True:
        try:
            return call()
        except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError):
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)
        except AuthorizationError:
            raise
        except KafkaError:
            return None
