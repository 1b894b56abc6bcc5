"""The consumer loop's decisions without a broker: a fake consumer (partitions as lists of records,
positions, committed offsets, the group's callbacks) and a fake committer (commits into a dict that
the restores read back, outcomes scripted). The expected counts are the sets of uids per minute of
the frames given, computed here."""
from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any, Callable

import pytest
from kafka import TopicPartition

from uniqcount.core.granularities import parse_granularities
from uniqcount.kafka_client.record_batches import Record
from uniqcount.kafka_client.transactions import TransactionFailed
from uniqcount.runtime import config, count_task, idleness
from uniqcount.runtime import tasks as tasks_module
from uniqcount.runtime.broker_calls import BrokerCalls
from uniqcount.runtime.committer import Change, Outcome
from uniqcount.runtime.consumer_loop import ConsumerLoop
from uniqcount.runtime.count_task import CountTask
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.outputs import CountedOnly, Records
from uniqcount.runtime.run_state import GroupEvents, Requests
from uniqcount.runtime.state_log import OFFSET, StateMismatch
from uniqcount.runtime.tasks import Tasks

BASE = 1_700_000_040  # a minute's start
TOPIC = "events"
SETTINGS = config.load(Path("/nonexistent"), {}).replace(
    allowed_lateness=0, outlier_jump=0, granularities=parse_granularities("minute"), status_interval=0)
MOST_POLLS = 400  # a loop that has not ended by then never will


def frames(partition: int, minutes: int = 3, per_minute: int = 20, first_minute: int = 0) -> list[bytes]:
    """Users u<partition>-<n> spread over `minutes` minutes, in order."""
    return [json.dumps({"uid": f"u{partition}-{n % (7 + m)}", "ts": BASE + m * 60 + n}).encode()
            for m in range(first_minute, first_minute + minutes) for n in range(per_minute)]


def truth(values: list[bytes]) -> dict[int, int]:
    users: dict[int, set[str]] = {}
    for value in values:
        frame = json.loads(value)
        users.setdefault(frame["ts"] // 60 * 60, set()).add(frame["uid"])
    return {start: len(uids) for start, uids in users.items()}


class Collected(Records):
    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.results: list[Any] = []

    def write(self, results: list[Any]) -> None:
        super().write(results)
        self.results += results

    def latest_final(self) -> dict[int, int]:
        return {r.start: r.users for r in self.results if r.final}


class FakeConsumer:
    """Partitions as lists of records; `actions[n]` runs before the n-th poll returns."""

    def __init__(self, logs: dict[int, list[bytes]], batch: int = 7):
        self.logs = {TopicPartition(TOPIC, p): [Record(TOPIC, p, i, None, v) for i, v in enumerate(values)]
                     for p, values in logs.items()}
        self.assigned = set(self.logs)
        self.positions: dict[Any, int] = {}
        self.committed_offsets: dict[Any, int] = {}
        self.batch = batch
        self.listener: GroupEvents | None = None
        self.polls = 0
        self.actions: dict[int, Callable[[], None]] = {}

    def poll(self, timeout_ms: int) -> dict[Any, list[Record]]:
        self.polls += 1
        assert self.polls < MOST_POLLS, "the loop did not end"
        if self.polls == 1 and self.listener:
            self.listener.on_partitions_assigned(self.assigned)
        if self.polls in self.actions:
            self.actions[self.polls]()
        polled = {}
        for tp in sorted(self.assigned & set(self.positions), key=lambda tp: tp.partition):
            records = self.logs[tp][self.positions[tp]:self.positions[tp] + self.batch]
            if records:
                polled[tp] = records
                self.positions[tp] += len(records)
        return polled

    def rebalance(self, partitions: set[int]) -> None:
        self.assigned = {tp for tp in self.logs if tp.partition in partitions}
        self.positions = {tp: p for tp, p in self.positions.items() if tp in self.assigned}
        assert self.listener is not None
        self.listener.on_partitions_assigned(self.assigned)

    def assignment(self) -> set[Any]:
        return set(self.assigned)

    def position(self, tp: Any) -> int:
        return self.positions[tp]

    def committed(self, tp: Any, timeout_ms: int) -> int | None:
        return self.committed_offsets.get(tp)

    def seek(self, tp: Any, offset: int) -> None:
        self.positions[tp] = offset

    def seek_to_beginning(self, tp: Any) -> None:
        self.positions[tp] = 0

    def highwater(self, tp: Any) -> int:
        return len(self.logs[tp])

    def end_offsets(self, tps: list[Any], timeout_ms: int) -> dict[Any, int]:
        return {tp: len(self.logs[tp]) for tp in tps}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.logs}


class FakeCommitter:
    """Commits changes into `store` (the compacted state topic) and offsets into the consumer."""

    def __init__(self, consumer: FakeConsumer, outcomes: list[Outcome] = ()):
        self.consumer = consumer
        self.outcomes = list(outcomes)
        self.store: dict[int, dict[str, bytes]] = {}
        self.failure: str | None = None
        self.commits = self.aborts = 0

    def ready(self) -> bool:
        return True

    def commit(self, changes: list[Change], offsets: dict[Any, int]) -> Outcome:
        outcome = self.outcomes.pop(0) if self.outcomes and changes else Outcome.COMMITTED
        if outcome is Outcome.REDO:
            self.failure = "the broker aborted it"
            return outcome
        for change in changes:
            entries = self.store.setdefault(change.partition, {})
            if change.value is None:
                entries.pop(change.key.decode(), None)
            else:
                entries[change.key.decode()] = change.value
        self.consumer.committed_offsets.update(offsets)
        self.commits += 1
        return outcome

    def fail(self, exc: TransactionFailed) -> None:
        self.failure = str(exc)

    def abort(self) -> None:
        self.aborts += 1
        self.failure = None

    def read(self, partitions: list[int], timeout_ms: int) -> dict[int, dict[str, bytes]]:
        return {p: dict(self.store.get(p, {})) for p in partitions}


def loop_of(consumer: FakeConsumer, committer: FakeCommitter, exit_at_end: bool = False,
            idle_after: float = 3600.0) -> tuple[ConsumerLoop, Collected]:
    records = Collected()
    counting = Counting(SETTINGS, records, CountedOnly())
    outage = Outage("consumer", 600)
    calls = BrokerCalls(outage, lambda: False, lambda: None)
    tasks = Tasks(consumer, calls, lambda tp: CountTask(tp, counting, "state", None, False),
                  lambda topic: committer, committer.ready)
    events = GroupEvents()
    consumer.listener = events
    loop = ConsumerLoop(consumer, committer, tasks, counting, outage, Requests(install=False), events,  # type: ignore[arg-type]
                        TOPIC, len(consumer.logs), None, 0.0, idle_after, exit_at_end)
    return loop, records


def frames_in(loop: ConsumerLoop) -> int:
    return loop.counting.counters.total("frames_in")


def test_drain_makes_every_window_final_and_ends():
    values = frames(0)
    consumer = FakeConsumer({0: values})
    loop, records = loop_of(consumer, FakeCommitter(consumer), exit_at_end=True)
    loop.run()
    assert records.latest_final() == truth(values)
    assert consumer.committed_offsets == {TopicPartition(TOPIC, 0): len(values)}


def test_a_rebalance_that_takes_a_partition_rewinds_to_the_checkpoint():
    logs = {0: frames(0), 1: frames(1, first_minute=10)}  # windows of their own
    consumer = FakeConsumer(logs)
    committer = FakeCommitter(consumer)
    loop, records = loop_of(consumer, committer, exit_at_end=True)
    consumer.actions[4] = lambda: consumer.rebalance({0})
    loop.run()
    assert (loop.state.rewinds, committer.aborts) == (1, 1)
    assert set(loop.tasks.tasks) == {TopicPartition(TOPIC, 0)}
    assert frames_in(loop) == len(logs[0])  # partition 0 restored and read on, nothing twice
    latest = records.latest_final()
    assert {start: latest[start] for start in truth(logs[0])} == truth(logs[0])


def test_a_transaction_that_cannot_commit_is_redone_from_the_last_checkpoint():
    values = frames(0)
    consumer = FakeConsumer({0: values})
    committer = FakeCommitter(consumer, [Outcome.COMMITTED, Outcome.REDO])
    loop, records = loop_of(consumer, committer, exit_at_end=True)
    loop.run()
    assert (loop.state.rewinds, committer.aborts) == (1, 1)
    assert frames_in(loop) == len(values)  # restored from the first commit: nothing counted twice
    assert records.latest_final() == truth(values)


def test_when_every_partition_is_idle_its_windows_close(monkeypatch):
    clock = types.SimpleNamespace(now=0.0)

    def monotonic() -> float:
        clock.now += 10.0  # ten seconds a call: a partition is idle after one poll without frames
        return clock.now

    for module in (idleness, count_task):
        monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=monotonic))
    logs = {0: frames(0), 1: frames(1, first_minute=10)}  # windows of their own
    consumer = FakeConsumer(logs)
    loop, records = loop_of(consumer, FakeCommitter(consumer), idle_after=5.0)
    consumer.actions[30] = lambda: setattr(loop.requests, "stop", True)  # a stop: no flush
    loop.run()
    assert records.latest_final() == {**truth(logs[0]), **truth(logs[1])}


def test_a_restore_behind_its_commit_is_read_again_then_refused(monkeypatch):
    monkeypatch.setattr(tasks_module, "STATE_BEHIND_WAIT", 0.0)
    consumer = FakeConsumer({0: frames(0)})
    committer = FakeCommitter(consumer)
    tp = TopicPartition(TOPIC, 0)
    consumer.committed_offsets[tp] = 5
    reads = []

    def reader(topic: str) -> Any:
        def read(partitions: list[int], timeout_ms: int) -> dict[int, dict[str, bytes]]:
            reads.append(topic)
            at = 5 if len(reads) >= catch_up_at else 3  # the commit's markers arrive late
            return {0: {OFFSET: bytes([at])}}
        return types.SimpleNamespace(read=read)

    loop, _ = loop_of(consumer, committer)
    catch_up_at = 3
    tasks = Tasks(consumer, loop.tasks.calls, loop.tasks.make, reader, committer.ready)
    tasks.follow({tp})
    assert len(reads) == 3 and tp in tasks.tasks and consumer.positions[tp] == 5
    reads.clear()
    catch_up_at = 10 ** 6
    with pytest.raises(StateMismatch, match="behind"):
        Tasks(consumer, loop.tasks.calls, loop.tasks.make, reader, committer.ready).follow({tp})
    assert len(reads) == tasks_module.STATE_BEHIND_TRIES
