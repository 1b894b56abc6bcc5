"""consumer.py's Kafka loop: poll, hand each partition's records to its task, checkpoint; follow the
group; and go back to the last checkpoint when a transaction is lost. The phases and what moves
them are in run_state.py; who owns what is in docs/ARCHITECTURE.md.

- Exactly once, Kafka in to Kafka out: every CHECKPOINT_SECONDS the committer (committer.py) commits
  the records and dead letters made since the last checkpoint, every task's changes (state entries,
  partial results) and the consumed offsets in one Kafka transaction, or none of them.
- A partition that is assigned (start, restart, rebalance) gets a task restored from the state and
  read from the committed offset (tasks.py). Anything that breaks a transaction (a partition taken
  away, the group refusing the offsets, the broker aborting it, fencing) means a rewind: the work
  since the last checkpoint dropped, every task restored: the path a restart takes.
- A broker that goes away is waited for (broker_calls.py); only an outage longer than
  BROKER_WAIT_SECONDS ends the run, with one line.
"""
from __future__ import annotations

import time
from typing import Any

from uniqcount.runtime.committer import Committer, Outcome
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.idleness import Idleness
from uniqcount.runtime.merger_task import MergerTask
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.progress import status
from uniqcount.runtime.run_state import GroupEvents, Phase, Requests, RunState
from uniqcount.runtime.tasks import Tasks


class PartitionsChanged(Exception):
    """One line for the user: the input topic's partitions changed under a running consumer."""


class ConsumerLoop:
    def __init__(self, consumer: Any, committer: Committer, tasks: Tasks, counting: Counting, outage: Outage,
                 requests: Requests, events: GroupEvents, topic: str, partitions: int, merger_tp: Any | None,
                 interval: float, idle_after: float, exit_at_end: bool):
        """`partitions`: of the input topic at start (0: not there yet); `merger_tp`: the partials
        topic's partition, of a topic of several partitions (None: one partition)."""
        self.consumer, self.committer, self.tasks, self.counting = consumer, committer, tasks, counting
        self.outage, self.requests, self.events = outage, requests, events
        self.topic, self.partitions, self.merger_tp = topic, partitions, merger_tp
        self.interval, self.idle_after, self.exit_at_end = interval, idle_after, exit_at_end
        self.idleness = Idleness(consumer, tasks, counting, outage, topic)
        self.state = RunState()
        self.owned: tuple[Any, ...] = ()  # the partitions counted, as last said
        self.lags: dict[Any, int | None] = {}  # by partition, at the last checkpoint or status line (metrics.py)

    def run(self) -> None:
        last_checkpoint = time.monotonic()
        while not self.requests.stop and self.state.phase is not Phase.DONE:
            polled = self.consumer.poll(timeout_ms=200)
            self.follow_group()
            if self.state.rewinding:
                self.rewind()  # what this poll returned is read again from the checkpoint
                continue
            failed = self.tasks.process(polled)
            if failed is not None:  # nothing more is sent until the rewind
                self.committer.fail(failed)
                self.state.rewind(self.committer.failure or str(failed))
                continue
            if self.finish():
                continue
            if not any(tp.topic == self.topic for tp in polled):
                self.idleness.advance(self.idle_after)
                if self.counting.early.due():
                    self.counting.emit_provisional()
            if time.monotonic() - last_checkpoint >= self.interval:
                self.checkpoint()
                last_checkpoint = time.monotonic()
            if self.counting.meter.due():
                status(self.status_line())
        if self.requests.stop:
            stopped = self.checkpoint()  # False with a rewind due
            status("consumer: stopped; " + ("everything read is checkpointed" if stopped else
                   "what came after the last checkpoint is read again on restart"))

    def finish(self) -> bool:
        """The drain's steps (True: this turn is spent): end offsets taken, every window flushed
        once they are reached, then done once the merger (if here) has merged all."""
        state = self.state
        if state.phase is Phase.FLUSHED:
            if not self.merged_all():
                return False
            if self.checkpoint():
                state.done()
            return True
        if state.phase is Phase.RUNNING and (self.exit_at_end or self.requests.drain) and self.consumer.assignment():
            targets = self.tasks.end_offsets(self.idleness.inputs())
            if targets is not None:
                state.drain(targets)
        if state.phase is Phase.DRAINING and state.targets is not None and self.tasks.caught_up(state.targets):
            self.counting.flush_all()
            if self.checkpoint():  # the flushed windows, their records and the offsets together
                state.flushed()
                if self.merged_all():
                    state.done()
            return True
        return False

    def checkpoint(self) -> bool:
        """One transaction: every task's changes and the offsets, with the records and dead letters
        already in it. False when a stop came first or the transaction is lost (then a rewind)."""
        if self.state.rewinding or not self.committer.ready():  # with a rewind due, the tasks hold lost work
            return False
        outcome = self.committer.commit(self.tasks.changes(), self.tasks.offsets())
        self.lags = self.idleness.lags()
        if outcome is Outcome.REDO:
            self.state.rewind(self.committer.failure or "the checkpoint's transaction failed")
        return outcome is Outcome.COMMITTED

    def follow_group(self) -> None:
        """What the group did since the last poll: a consumer dropped, or partitions moved."""
        assigned, lost = self.events.take()
        if lost and self.tasks.tasks:
            self.state.rewind("the group dropped this consumer (its session expired)")
        if not assigned:
            return
        if self.state.rewinding:
            self.events.assigned = True  # followed after the rewind
            return
        why = self.tasks.follow(set(self.consumer.assignment()))
        if why:
            self.state.rewind(why)
            return
        total = len(self.consumer.partitions_for_topic(self.topic) or ())
        at_start = self.partitions or 1  # a topic made on first use has one
        if total and total != at_start:  # the merger waits for every partition: it must know them all
            raise PartitionsChanged(f"{self.topic} has {total} partition(s) now, {at_start} when this consumer "
                                    "started: restart the consumers of the group (nothing since the last "
                                    "checkpoint was committed)")
        self.say_owned(total)

    def say_owned(self, total: int) -> None:
        owned = tuple(sorted(self.tasks.tasks, key=lambda tp: (tp.topic != self.topic, tp.partition)))
        if self.merger_tp is not None and owned != self.owned:
            counted = ", ".join(str(tp.partition) for tp in owned if tp.topic == self.topic) or "none"
            merging = f"; merges them all into {self.counting.records.topic}" if self.merger_tp in owned else ""
            status(f"consumer: counts partition(s) {counted} of the {total} of {self.topic}, partial results to "
                   f"{self.merger_tp.topic}{merging}")
        self.owned = owned

    def rewind(self) -> None:
        """What a restart would do, without one: drop the work since the last checkpoint (its
        transaction is aborted) and restore every owned partition."""
        status(f"consumer: {self.state.why}; going on from the last checkpoint")
        self.committer.abort()
        self.counting.restart()
        self.tasks.clear()
        self.state.rewound()
        self.events.assigned = True  # every partition owned is built and restored again

    def merger(self) -> MergerTask | None:
        task = self.tasks.tasks.get(self.merger_tp)
        return task if isinstance(task, MergerTask) else None

    def merged_all(self) -> bool:
        """After a drain: not the merger, or every partition's flushed input is merged and published."""
        merger = self.merger()
        if merger is None:
            return True
        ends = None if merger.merging else self.tasks.end_offsets([merger.tp])
        return ends is not None and self.tasks.caught_up(ends)

    def status_line(self) -> str:
        merger = self.merger()
        self.lags = self.idleness.lags()
        return self.counting.status_line(self.idleness.lag()) + (merger.status if merger else "") + self.outage.line()
