"""What the user reads of an outage: one pair of lines per outage, even when a failover makes
requests fail and succeed by turns."""
from __future__ import annotations

import pytest

from uniqcount.runtime import outage as outage_module
from uniqcount.runtime.outage import Outage


@pytest.fixture
def said(monkeypatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(outage_module, "status", lines.append)
    return lines


def test_an_outage_is_said_when_it_begins_and_when_it_ends(said):
    outage = Outage("consumer", 600)
    outage.failed("end offsets: KafkaTimeoutError")
    outage.failed("end offsets: KafkaTimeoutError")
    outage.ended()
    assert len(said) == 2 and "broker unreachable (end offsets" in said[0] and "reachable again" in said[1]


def test_failures_by_turns_after_a_failover_make_one_pair_of_lines(said):
    outage = Outage("producer", 600)
    outage.failed("3 batches unacknowledged")
    outage.ended()
    for _ in range(10):  # seen on a cluster: 10 pairs in 0.6 s
        outage.failed("2 batches unacknowledged")
        outage.ended()
    assert len(said) == 2, said


def test_a_relapse_that_lasts_is_said(said, monkeypatch):
    outage = Outage("consumer", 600)
    outage.failed("commit")
    outage.ended()
    outage.failed("commit")
    assert len(said) == 2
    monkeypatch.setattr(outage_module, "RELAPSE_SAY_AFTER", 0.0)
    outage.failed("commit")
    outage.ended()
    assert len(said) == 4 and "broker unreachable" in said[2] and "reachable again" in said[3]


def test_a_moving_leader_is_not_called_an_unreachable_broker(said):
    outage = Outage("consumer", 600)
    outage.failed("end offsets: NotLeaderForPartitionError", moving=True)
    assert "the cluster answers, but a node is away or a leader is moving" in said[0] and "unreachable" not in said[0]
