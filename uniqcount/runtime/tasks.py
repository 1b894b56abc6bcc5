"""Everything a consumer owns, as tasks by topic partition: an input partition's counter
(count_task.py) and, on the consumer given the partials topic's partition, the merger
(merger_task.py). Each task is built on assignment from what it reads of the state (one restore
path for every kind), processes the records of its partition, and hands its changes to each
checkpoint in one shape; a rewind drops them all, and the next assignment builds them again.

A task is restored from its latest entries and read on from its committed offset: the output goes
on as if nothing had happened. A state behind its committed offset (the commit's markers still on
their way) is read again, STATE_BEHIND_TRIES times, then StateMismatch.
"""
from __future__ import annotations

import time
from itertools import groupby
from typing import Any, Callable, Protocol, Sequence, TypeVar

from uniqcount.kafka_client.transactions import TransactionFailed
from uniqcount.runtime.broker_calls import BrokerCalls
from uniqcount.runtime.committer import Change
from uniqcount.runtime.progress import status
from uniqcount.runtime.state_log import Entries, StateMismatch

STATE_BEHIND_TRIES = 20  # reads of a state that is behind its committed offset (markers being written)
STATE_BEHIND_WAIT = 0.5  # seconds between them
Source = tuple[str, int]  # (topic, partition) a restore reads
T = TypeVar("T")


class Task(Protocol):
    position: int | None  # past the last record processed since the restore (None: none yet)

    @property
    def tp(self) -> Any: ...

    @property
    def sources(self) -> Sequence[Source]: ...

    def restore(self, entries: Sequence[Entries], committed: int | None) -> str | None: ...

    def process(self, records: list[Any]) -> None: ...

    def changes(self, position: int | None) -> list[Change]: ...


class Reader(Protocol):
    def read(self, partitions: list[int], timeout_ms: int) -> dict[int, Entries]: ...


def until_not_behind(read: Callable[[], T], restore: Callable[[T], Any]) -> tuple[T, Any]:
    """(what `read` gave, what `restore` made of it), read again while the state is behind its
    committed offset (StateMismatch); at last, raised."""
    for _ in range(STATE_BEHIND_TRIES - 1):
        data = read()
        try:
            return data, restore(data)
        except StateMismatch:
            time.sleep(STATE_BEHIND_WAIT)
    data = read()
    return data, restore(data)  # the last try: its StateMismatch goes up


class Tasks:
    def __init__(self, consumer: Any, calls: BrokerCalls, make: Callable[[Any], Task],
                 reader: Callable[[str], Reader], ready: Callable[[], bool]):
        """`make`: the task of a newly assigned topic partition; `reader`: of a topic that restores
        read; `ready`: the transactions started (False: a stop came first)."""
        self.consumer = consumer
        self.calls = calls
        self.make = make
        self.reader = reader
        self.ready = ready
        self.tasks: dict[Any, Task] = {}
        self.fresh: set[Any] = set()  # restored by this poll: what it returned of them is read again
        self.restores = 0  # tasks restored (metrics.py)

    def follow(self, assigned: set[Any]) -> str | None:
        """After a rebalance: partitions taken away mean a rewind (the transaction under way holds
        their records: why is returned); new ones are built and restored."""
        if set(self.tasks) - assigned:
            return "partitions moved to another consumer"
        new = [self.make(tp) for tp in sorted(assigned - set(self.tasks), key=lambda tp: (tp.topic, tp.partition))]
        if new:
            self.restore(new)
        return None

    def restore(self, new: list[Task]) -> None:
        """Each task from its latest entries, read on from its committed offset."""
        began = time.monotonic()
        readers = {topic: self.reader(topic) for task in new for topic, _ in task.sources}
        if not self.ready():
            return  # a stop came first
        committed = [self.calls.retried("read the committed offset", self.consumer.committed, t.tp) for t in new]
        wanted: dict[str, set[int]] = {}
        for topic, partition in (source for task in new for source in task.sources):
            wanted.setdefault(topic, set()).add(partition)

        def read() -> list[list[Entries]]:
            got = {topic: self.calls.retried(f"read {topic}", readers[topic].read, sorted(partitions))
                   for topic, partitions in wanted.items()}
            return [[got[topic][partition] for topic, partition in task.sources] for task in new]

        entries, notes = until_not_behind(read, lambda read_: [t.restore(e, c) for t, e, c in zip(new, read_, committed)])
        self.restores += len(new)
        for task, offset in zip(new, committed):
            self._seek(task, offset)
        for note in filter(None, notes):
            status(f"consumer: {note}")
        seconds = time.monotonic() - began
        for kind, group in groupby(range(len(new)), key=lambda i: type(new[i])):
            index = list(group)
            offsets = ", ".join(str(committed[i]) for i in index)
            line = kind.restored_line([new[i] for i in index], [entries[i] for i in index])
            status(f"consumer: {line} in {seconds:.2f} s; reading on from offset{'s' if len(index) > 1 else ''} {offsets}")

    def _seek(self, task: Task, committed: int | None) -> None:
        if committed is None:
            self.consumer.seek_to_beginning(task.tp)
        else:
            self.consumer.seek(task.tp, committed)
        self.tasks[task.tp] = task
        self.fresh.add(task.tp)

    def process(self, polled: dict[Any, list[Any]]) -> TransactionFailed | None:
        """A poll's records, each partition's to its task; what a partition restored by this poll
        returned is left out (read again from its committed offset). Stops at a transaction lost
        (a send waiting for room found it gone): returned, for the rewind."""
        try:
            for tp, records in polled.items():
                task = self.tasks.get(tp)
                if task is not None and tp not in self.fresh:
                    task.process(records)
                    task.position = self.position(tp)
        except TransactionFailed as exc:
            return exc
        finally:
            self.fresh.clear()
        return None

    def position(self, tp: Any) -> int:
        """The consumer's own: past the last record read and past the control and aborted batches
        after it (a transactional input ends with a commit marker, not with a frame). Known without
        asking the broker: every partition counted was sought to its committed offset."""
        return int(self.consumer.position(tp))

    def changes(self) -> list[Change]:
        return [change for task in self.tasks.values() for change in task.changes(task.position)]

    def offsets(self) -> dict[Any, int]:
        return {tp: task.position for tp, task in self.tasks.items() if task.position is not None}

    def caught_up(self, ends: dict[Any, int]) -> bool:
        return all(tp in self.tasks and self.position(tp) >= end for tp, end in ends.items())

    def end_offsets(self, tps: list[Any]) -> dict[Any, int] | None:
        ends: dict[Any, int] | None
        _, ends = self.calls.tried("end offsets", self.consumer.end_offsets, tps)
        return ends

    def clear(self) -> None:
        """A rewind: every task is built and restored again on the next assignment."""
        self.tasks.clear()
        self.fresh.clear()
