"""A cluster of three on 127.0.0.1 (localbroker.LocalCluster): the topics uniqcount makes take its
replication, and faults on it (devtools/drills.py) leave the output exact, with no record twice,
moving again within the bound the issue sets (the broker's failover plus two checkpoints, ~30 s
here) with a margin. The other drills run by hand: `python -m uniqcount.devtools.drills`, their
table in docs/FAILURES.md."""
from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from tests.helpers import needs_samples
from uniqcount.devtools.drills import DRILLS, new_cluster, run_drill
from uniqcount.kafka_client.kafka_io import create_topics, partials_topic
from uniqcount.kafka_client.state_topic import state_topic
from uniqcount.runtime import config

pytestmark = [pytest.mark.kafka, needs_samples]
STALL_BOUND = 60.0  # seconds: failover (~10-20 s) + two checkpoints, with room for a shared 2-core machine


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, bootstrap):  # bootstrap first: the jars are fetched once
    made = new_cluster(tmp_path_factory.mktemp("cluster"))
    made.start()
    yield made
    made.stop()


def test_the_topics_uniqcount_makes_take_the_clusters_replication(cluster):
    tag = uuid.uuid4().hex[:8]
    settings = config.load().replace(bootstrap_servers=cluster.bootstrap, topic=f"events-{tag}",
                                     output_topic=f"out-{tag}", dlq_topic=f"dlq-{tag}",
                                     consumer_group=f"group-{tag}", topic_partitions=4)
    create_topics(settings, roles=["TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "STATE", "PARTIALS"])
    names = [settings.topic, settings.output_topic, settings.dlq_topic, state_topic(settings.consumer_group),
             partials_topic(settings.output_topic)]
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        deadline = time.monotonic() + 30
        while True:  # a topic just made may not be in every node's metadata yet
            replicas = {(t["name"], p["partition_index"]): len(p["replica_nodes"])
                        for t in admin.describe_topics(names) for p in t["partitions"]}
            if len(replicas) == 11 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, settings.topic, ["min.insync.replicas"]),
             ConfigResource(ConfigResourceType.BROKER, "1", ["transaction.state.log.replication.factor"])],
            config_filter="all")
    finally:
        admin.close()
    assert len(replicas) == 4 + 1 + 1 + 4 + 1 and set(replicas.values()) == {3}, replicas
    assert found["topic"][settings.topic]["min.insync.replicas"]["value"] == "2", found
    assert found["broker"]["1"]["transaction.state.log.replication.factor"]["value"] == "3", found


@pytest.mark.parametrize("name", ["coordinator", "two-down"])
def test_a_fault_on_the_cluster_leaves_the_output_exact_and_moving(cluster, tmp_path, name):
    """coordinator: the transaction coordinator of a consumer SIGKILLed, back after 15 s (it once
    stalled the output ~300 s on stale metadata); two-down: two nodes down 30 s each, one after the
    other (a new producer's start once hung for good), its stall counted from when the cluster takes
    writes again."""
    (drill,) = [d for d in DRILLS if d.name == name]
    result = run_drill(cluster, drill, tmp_path)
    print(result)
    assert result.exact and result.duplicates == 0, result
    assert result.stall < STALL_BOUND, result
