"""The local cluster's set-up without starting it: which ports and settings `./run.sh broker
start --nodes 3` and a three-port BOOTSTRAP_SERVERS give, and where the drills look for a
transaction coordinator (Kafka's own placement, checked against Java's String.hashCode), and how
they count a stall through a time the cluster could take no writes."""
from __future__ import annotations

from pathlib import Path

import pytest

from uniqcount.devtools.brokerctl import local_broker
from uniqcount.devtools.drills import still, transaction_log_partition
from uniqcount.devtools.localbroker import BrokerError, LocalBroker, LocalCluster, free_ports
from uniqcount.runtime import config


def properties(node: LocalBroker) -> dict[str, str]:
    return dict(line.split("=", 1) for line in node._properties().splitlines()[1:])


def test_three_nodes_on_every_second_port_replicate_everything():
    cluster = local_broker(config.load(environ={"BOOTSTRAP_SERVERS": "localhost:9092"}), nodes=3)
    assert isinstance(cluster, LocalCluster)
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    settings = [properties(node) for node in cluster.nodes]
    assert [s["node.id"] for s in settings] == ["1", "2", "3"]
    assert {s["controller.quorum.voters"] for s in settings} == {"1@127.0.0.1:9093,2@127.0.0.1:9095,3@127.0.0.1:9097"}
    for s in settings:
        assert s["default.replication.factor"] == s["transaction.state.log.replication.factor"] == "3"
        assert s["min.insync.replicas"] == s["transaction.state.log.min.isr"] == "2"
        assert "controller.quorum.bootstrap.servers" not in s
    assert len({node.cluster_id for node in cluster.nodes}) == 1


def test_a_bootstrap_list_of_three_local_ports_is_a_cluster_of_them():
    servers = "127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292"
    cluster = local_broker(config.load(environ={"BOOTSTRAP_SERVERS": servers}))
    assert isinstance(cluster, LocalCluster) and cluster.bootstrap == servers


def test_one_node_stays_a_quorum_of_its_own():
    node = local_broker(config.load(environ={"BOOTSTRAP_SERVERS": "localhost:9092"}))
    assert isinstance(node, LocalBroker)
    settings = properties(node)
    assert settings["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert settings["default.replication.factor"] == settings["min.insync.replicas"] == "1"


def test_a_cluster_of_two_is_refused(tmp_path: Path):
    with pytest.raises(BrokerError, match="3 nodes or more"):
        LocalCluster(tmp_path, [1, 2], [3, 4])


@pytest.mark.parametrize("transactional_id, partition", [
    ("uniqcount-vm-0", 7), ("group-1639ec49-vm-1", 10), ("ünïcode-id-€", 11), ("polygenelubricants", 0)])
def test_a_transactional_id_lives_where_kafka_puts_it(transactional_id, partition):
    """Expected: Utils.abs(id.hashCode()) % 50, printed by jshell (Java 17)."""
    assert transaction_log_partition(transactional_id, 50) == partition


@pytest.mark.parametrize(("began", "ended", "unwritable", "expected"), [
    (0, 60, [], 60),  # nothing left out
    (0, 60, [(15, 30)], 30),  # through it: from its end
    (20, 60, [(15, 30)], 30),  # the stall began below min.insync.replicas
    (0, 20, [(15, 30)], 0),  # the output moved while below it: nothing to bound
    (40, 60, [(15, 30)], 20),  # before the stall: nothing to leave out
])
def test_a_stall_through_a_time_below_min_insync_replicas_counts_from_its_end(began, ended, unwritable, expected):
    assert still(began, ended, unwritable) == expected


def test_the_ports_a_cluster_is_given_are_distinct():
    """Chosen one by one, a port closed and picked again could be handed out twice."""
    assert len(set(free_ports(64))) == 64
