"""consumer.py's Kafka loop: poll, count, checkpoint; restore; and what it does when the broker or
the group misbehaves.

- Exactly once, Kafka in to Kafka out. Every CHECKPOINT_SECONDS one Kafka transaction commits the
  records and dead letters made since the last checkpoint, the state changes of every owned
  partition (runtime/checkpoint.py, to `<CONSUMER_GROUP>-state`) and the consumed offsets, or none
  of them. Readers with read_committed never see the work of a transaction that did not commit.
- A partition that is assigned (start, restart, rebalance) is restored from the state topic and
  read from the committed offset: the output goes on as if nothing had happened. Anything that
  breaks a transaction (a partition taken away, the group refusing the offsets, the broker aborting
  it) drops the work since the last checkpoint and restores every owned partition: one recovery
  path, the one a restart takes.
- Each transactional id (`<CONSUMER_GROUP>-<INSTANCE_ID>`) belongs to one consumer: a restart with
  the same one fences its predecessor and aborts what it left open; offsets go with the group's
  generation, so a consumer the group has dropped (a zombie) cannot commit (KIP-447).
- A broker that goes away (killed, restarting, unreachable) is waited for: a checkpoint under way
  waits and retries, the status line says since when, and the loop goes on where it was once the
  broker answers. Only an outage longer than BROKER_WAIT_SECONDS ends it, with one line.
- Each partition it owns is counted on its own (core/merge.py). Of a topic with several partitions,
  every consumer sends partial results in its checkpoints, and the one that owns the partials
  topic's partition merges them into the records (runtime/merging.py): any number of consumers of
  the group, on any machines, publish one exact answer.
"""
from __future__ import annotations

import argparse
import signal
import socket
import time
from typing import Any, Callable

from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.kafka_io import TRANSACTION_TIMEOUT_MS, partials_topic
from uniqcount.kafka_client.probe import any_answers
from uniqcount.kafka_client.record_batches import Record
from uniqcount.kafka_client.sends import SendFailed, Sends
from uniqcount.kafka_client.state_topic import StateReader, state_topic
from uniqcount.kafka_client.transactions import Fenced, TransactionFailed, Transactions
from uniqcount.runtime.checkpoint import StateLog, StateMismatch
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.merging import MERGER_PARTITION, MergerRole, PartialsOut
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.outputs import KafkaDeadLetters, Records
from uniqcount.runtime.progress import status

BROKER_CALL_SECONDS = 5.0  # one try of a call to the broker (commit, offsets) before it counts as failed
FENCED_AGAIN_SECONDS = 120.0  # fenced twice within this: another consumer has the same transactional id
STATE_BEHIND_TRIES = 20  # reads of a state that is behind its committed offset (markers being written)


class FencedOut(Exception):
    """One line for the user: two consumers share a transactional id."""


class TransactionsRefused(Exception):
    """One line for the user: the broker does not let this consumer use transactions."""


class PartitionsChanged(Exception):
    """One line for the user: the input topic's partitions changed under a running consumer."""


def retriable(exc: KafkaError) -> bool:
    return bool(getattr(exc, "retriable", False))


def until_not_behind(read: Callable[[], Any], restore: Callable[[Any], Any]) -> tuple[Any, Any]:
    """(what `read` gave, what `restore` made of it), read again while the state is behind its
    committed offset (the commit's markers on their way: StateMismatch); at last, raised."""
    for _ in range(STATE_BEHIND_TRIES - 1):
        data = read()
        try:
            return data, restore(data)
        except StateMismatch:
            time.sleep(0.5)
    data = read()
    return data, restore(data)  # the last try: its StateMismatch goes up


class Stop:
    """SIGINT/SIGTERM: stop now (a checkpoint of what was done first, when the broker answers).
    SIGUSR1: drain, i.e. read up to the end offsets of this moment, emit everything, exit."""

    def __init__(self) -> None:
        self.now = False
        self.drain = False
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGUSR1, self._drain)

    def _stop(self, *_: Any) -> None:
        self.now = True

    def _drain(self, *_: Any) -> None:
        self.drain = True


class KafkaRun:
    """The consumer loop's bookkeeping: positions, checkpoints, restores, lag, idleness, rewinds."""

    def __init__(self, consumer: Any, counting: Counting, sends: Sends, outage: Outage, settings: dict[str, Any],
                 stop: Stop, transactional_id: str):
        self.consumer = consumer
        self.counting = counting
        self.sends = sends
        self.outage = outage
        self.settings = settings
        self.stop = stop
        self.topic = settings["TOPIC"]
        self.transactional_id = transactional_id
        self.state_topic = state_topic(settings["CONSUMER_GROUP"])
        self.partials_topic = partials_topic(settings["OUTPUT_TOPIC"])
        self.partials_tp = TopicPartition(self.partials_topic, 0)
        self.partials_out = PartialsOut(settings["INPUT_KEYED_BY_UID"])
        self.merger: MergerRole | None = None  # while this consumer owns the partials topic's partition
        self.partials_reader: StateReader | None = None
        self.state = StateLog(lambda: counting.partitions)
        self.reader: StateReader | None = None  # made once the state topic is there
        self.partitions_at_start = 0  # of the input topic (0: not there yet); the state topic was made with as many
        self.transactions = self._transactions(sends.producer)
        self.rebuilt = False  # the producer was just made again: its transaction is empty
        self.fenced_at = -FENCED_AGAIN_SECONDS
        self.positions: dict[Any, int] = {}
        self.restored: set[Any] = set()  # partitions restored and counted
        self.fresh: set[Any] = set()  # restored by this poll: what it returned of them is read again
        self.owned: tuple[Any, ...] = ()  # the partitions counted, as last said
        self.assignment_changed = False
        self.rewind: str | None = None  # why the work since the last checkpoint must be redone
        self.rewinds = 0
        self.checkpoints = 0
        self.started = time.monotonic()
        self.last_frame: dict[Any, float] = {}
        self.watermark_at_last_frame: dict[Any, int | None] = {}

    def _transactions(self, producer: Any) -> Transactions:
        """Its start runs while the group is joined and the state restored (`_ready` waits for it)."""
        transactions = Transactions(producer)
        transactions.start()
        return transactions

    def _ready(self) -> bool:
        """Before anything is sent: the transactions started (False: a stop came first)."""
        if not self.transactions.ready:
            try:
                if not self._until("transactions not started", self.transactions.init):
                    return False
            except TransactionFailed as exc:
                raise TransactionsRefused(
                    f"the broker refuses transactions to {self.transactional_id} ({exc}); exactly once needs "
                    "them (Kafka 0.11 or later; with ACLs: Write and Describe on that TransactionalId); "
                    "without them use --input, which guarantees nothing across a crash") from None
            self._began()
        return True

    def inputs(self) -> list[Any]:
        """The input partitions assigned (not the partials topic's)."""
        return [tp for tp in self.consumer.assignment() if tp.topic == self.topic]

    def merge(self, tp: Any, records: list[Any]) -> None:
        """Partial results, for the merger."""
        assert self.merger is not None
        try:
            self.merger.process(records)
        except TransactionFailed as exc:
            self._failed(exc)
            return
        self.positions[tp] = self._position(tp)

    def process(self, tp: Any, records: list[Any]) -> None:
        if type(records[0]) is not Record:  # kafka-python's own path (with deserializers): no library objects in the core
            records = [Record(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
        try:
            self.counting.process([r.value or b"" for r in records], records, tp.partition)  # None: a tombstone
        except TransactionFailed as exc:  # a send waiting for room found the transaction gone
            self._failed(exc)
            return
        self.positions[tp] = self._position(tp)
        self.last_frame[tp] = time.monotonic()
        self.watermark_at_last_frame[tp] = self.counting.partitions.counters[tp.partition].watermark

    def _until(self, what: str, step: Callable[[float], bool], deadline: float | None = None) -> bool:
        """Try a step until it is done (True), or until a stop is asked for (False); an outage
        longer than BROKER_WAIT_SECONDS raises BrokerLost. Past `deadline` (the transaction's
        timeout: the broker aborts it anyway) the transaction has failed."""
        while not step(BROKER_CALL_SECONDS):
            if deadline is not None and time.monotonic() > deadline:
                raise TransactionFailed(f"{what} within the transaction timeout")
            self.outage.failed(what)
            if self.stop.now:
                return False
            if self.counting.meter.due():
                status(self.counting.status_line() + self.outage.line())
        self.outage.ended()
        return True

    def _tried(self, what: str, call: Any, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
        """One try of a call to the broker: (True, its result), or (False, None) when the broker did
        not answer (said as an outage). Errors no retry can mend are raised."""
        try:
            result = call(*args, timeout_ms=int(BROKER_CALL_SECONDS * 1000), **kwargs)
        except KafkaError as exc:
            if not retriable(exc):
                raise
            self.outage.failed(f"{what}: {type(exc).__name__}")
            return False, None
        self.outage.ended()
        return True, result

    def _retried(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A call the loop cannot go on without: tried until it answers or the outage is too long."""
        while True:
            answered, result = self._tried(what, call, *args, **kwargs)
            if answered:
                return result
            time.sleep(1.0)

    def end_offsets(self, tps: list[Any]) -> dict[Any, int] | None:
        _, ends = self._tried("end offsets", self.consumer.end_offsets, tps)
        return ends

    def merged_all(self) -> bool:
        """After a drain: not the merger, or every partition's flushed input is merged and published."""
        if self.merger is None:
            return True
        ends = self.end_offsets([self.partials_tp]) if self.merger.merger.flushed else None
        return ends is not None and self.caught_up(ends) and not self.merger.merger.waiting

    def caught_up(self, ends: dict[Any, int]) -> bool:
        return all(tp in self.restored and self._position(tp) >= end for tp, end in ends.items())

    def _position(self, tp: Any) -> int:
        """The consumer's own: past the last record read and past the control and aborted batches
        after it (a transactional input ends with a commit marker, not with a frame). Known without
        asking the broker: every partition counted was sought to its committed offset."""
        return self.consumer.position(tp)

    def lags(self) -> dict[Any, int | None]:
        """Per owned partition: records not read yet (None: the broker has not said, or the
        partition is not restored yet)."""
        lags: dict[Any, int | None] = {}
        for tp in self.inputs():
            highwater = self.consumer.highwater(tp)
            lags[tp] = None if highwater is None or tp not in self.restored else \
                max(highwater - self._position(tp), 0)
        return lags

    def lag(self) -> int | None:
        lags = self.lags()
        return None if not lags or None in lags.values() else sum(lags.values())

    def idle_advance(self, idle_after: float) -> None:
        """A partition caught up and idle: its event time moves on with the wall clock since its last
        frame, and it holds the others back no more. Never while behind (lag > 0): replayed history
        must close windows by its own event time; and not for the time the broker was away: the
        frames of that time may still come."""
        if self.outage.since is not None:
            return
        now = time.monotonic()
        idle = {tp: now - max(self.last_frame.get(tp, self.started), self.outage.ended_at) for tp in self.inputs()}
        lags = self.lags()
        unknown = [tp for tp, lag in lags.items() if lag is None and tp in self.restored and idle[tp] >= idle_after]
        if unknown:  # no fetch has said its high watermark yet (seen for a partition that never had a record)
            ends = self.end_offsets(unknown) or {}
            lags.update({tp: max(end - self._position(tp), 0) for tp, end in ends.items()})
        for tp, lag in lags.items():
            if idle[tp] < idle_after or lag != 0 or tp not in self.restored:
                continue
            if tp not in self.watermark_at_last_frame:  # since the restore: from its restored event time
                counter = self.counting.partitions.assign(tp.partition)
                counter.settle()  # a stream too short to start: start it
                self.watermark_at_last_frame[tp] = counter.watermark
            watermark = self.watermark_at_last_frame[tp]
            self.counting.advance_idle(tp.partition, None if watermark is None else watermark + int(idle[tp]))

    def checkpoint(self) -> bool:
        """One transaction: the state changes, then (with the records and dead letters already in
        it) the offsets, committed together. False when a stop came first or the transaction failed
        (then `rewind` says why, and the work since the last checkpoint is redone)."""
        if self.rewind or not self._ready():  # with a rewind due, the state holds work the transaction lost
            return False
        if self.counting.partials:
            for key, value in self.partials_out.records(self.counting.partitions):
                self.sends.send(self.partials_topic, key, value, partition=0)
        positions = {tp.partition: position for tp, position in self.positions.items() if tp.topic == self.topic}
        changes = [(self.state_topic, partition, key.encode(), value)
                   for partition, key, value in self.state.changes(positions)]
        if self.merger is not None and self.partials_tp in self.positions:
            changes += self.merger.changes(self.positions[self.partials_tp])
        if not changes and self.sends.sent == self.sent_before:  # nothing new: is the broker there at all?
            if any_answers(self.settings["BOOTSTRAP_SERVERS"]):
                self.outage.ended()
            else:
                self.outage.failed("no answer")
            return True
        for topic, partition, key, value in changes:
            self.sends.send(topic, key, value, partition=partition)
        offsets = {tp: OffsetAndMetadata(position, "", -1) for tp, position in self.positions.items()}
        # the broker's clock of the transaction started with its first send, at most an interval ago
        deadline = time.monotonic() + TRANSACTION_TIMEOUT_MS / 1000 - self.settings["CHECKPOINT_SECONDS"] - BROKER_CALL_SECONDS
        try:
            if not self._until("results, dead letters and state not acknowledged", self.sends.settle, deadline):
                return False
            if offsets and not self._until("offsets not added to the transaction", lambda timeout: self.transactions.offsets(
                    offsets, self.consumer.group_metadata(), timeout), deadline):
                return False
            if not self._until("transaction not committed", self.transactions.commit, deadline):
                return False
        except TransactionFailed as exc:
            self._failed(exc)
            return False
        self._began()
        self.checkpoints += 1
        return True

    def _began(self) -> None:
        """A new transaction: what is sent from now on is in it."""
        self.sent_before = self.sends.sent

    def _failed(self, exc: TransactionFailed) -> None:
        """A transaction that cannot commit: a new producer (its start aborts the old one's open
        transaction), and the work since the last checkpoint redone."""
        now = time.monotonic()
        if isinstance(exc, Fenced):
            if now - self.fenced_at < FENCED_AGAIN_SECONDS:
                raise FencedOut(f"another consumer uses the transactional id {self.transactional_id} and fenced "
                                f"this one twice: give each consumer of the group its own INSTANCE_ID; nothing "
                                "since the last checkpoint was committed") from None
            self.fenced_at = now
        self.rewind = self.rewind or f"the checkpoint's transaction failed ({exc})"
        kafka_io.close_producer(self.sends.producer, 0)
        producer = kafka_io.producer(self.settings, self.transactional_id)
        self.sends.replace(producer)
        self.transactions = self._transactions(producer)
        self.rebuilt = True

    def follow_assignment(self) -> None:
        """After a rebalance: partitions taken away mean redoing the work since the checkpoint (its
        transaction holds their records), new ones are restored; then say what this consumer does."""
        self.assignment_changed = False
        assigned = set(self.consumer.assignment())
        if self.restored - assigned:
            self.rewind = self.rewind or "partitions moved to another consumer"
            return
        total = len(self.consumer.partitions_for_topic(self.topic) or ())
        at_start = self.partitions_at_start or 1  # a topic made on first use has one
        if total and total != at_start:  # the merger waits for every partition: it must know them all
            raise PartitionsChanged(f"{self.topic} has {total} partition(s) now, {at_start} when this consumer "
                                    "started: restart the consumers of the group (nothing since the last "
                                    "checkpoint was committed)")
        new = sorted(assigned - self.restored)
        self.restore([tp for tp in new if tp.topic == self.topic])
        if self.partials_tp in new:
            self.restore_merger(total)
        owned = tuple(sorted(assigned, key=lambda tp: (tp.topic != self.topic, tp.partition)))
        if self.counting.partials and owned != self.owned:
            counted = ", ".join(str(tp.partition) for tp in owned if tp.topic == self.topic) or "none"
            merging = f"; merges them all into {self.settings['OUTPUT_TOPIC']}" if self.partials_tp in assigned else ""
            status(f"consumer: counts partition(s) {counted} of the {total} of {self.topic}, partial results to "
                   f"{self.partials_topic}{merging}")
        self.owned = owned

    def _partials_reader(self) -> StateReader:
        if self.partials_reader is None:
            self.partials_reader = StateReader(self.settings["BOOTSTRAP_SERVERS"], self.partials_topic)
        return self.partials_reader

    def restore_merger(self, partitions: int) -> None:
        """The merger's state from the state topic and the partials topic, read on from its committed offset."""
        began = time.monotonic()
        reader = self._state_reader()
        if not self._ready():
            return
        tp = self.partials_tp
        committed = self._retried("read the committed offset", self.consumer.committed, tp)
        role = MergerRole(self.counting.new_counter().sets, partitions, self.counting.records,
                          self.state_topic, self.partials_topic)

        def read() -> tuple[dict[str, bytes], dict[str, bytes]]:
            state = self._retried("read the state topic", reader.read, [MERGER_PARTITION])[MERGER_PARTITION]
            return state, self._retried("read the partials topic", self._partials_reader().read, [0])[0]

        (_, partials), note = until_not_behind(read, lambda read_: role.restore(*read_, committed))
        self._seek(tp, committed)
        self.merger = role
        if note:
            status(f"consumer: {note}")
        status(f"consumer: merger of {partitions} partitions: restored {len(role.merger.windows):,} windows "
               f"({sum(map(len, partials.values())) / 1e6:.1f} MB of partials) in {time.monotonic() - began:.2f} s; "
               f"reading on from offset {committed}")

    def _seek(self, tp: Any, committed: int | None) -> None:
        if committed is None:
            self.consumer.seek_to_beginning(tp)
        else:
            self.consumer.seek(tp, committed)
        self.positions.pop(tp, None)
        self.restored.add(tp)
        self.fresh.add(tp)

    def _state_reader(self) -> StateReader:
        """The state topic, created with a partition per input partition when it is not there."""
        if self.reader is None:
            partitions = len(self.consumer.partitions_for_topic(self.topic) or ())
            if partitions != self.partitions_at_start:
                kafka_io.create_topics({**self.settings, "TOPIC_PARTITIONS": partitions}, roles=["STATE"])
            self.reader = StateReader(self.settings["BOOTSTRAP_SERVERS"], self.state_topic)
            has = len(self._retried("read the state topic's partitions", self.reader.partitions))
            if has < partitions:
                raise StateMismatch(f"the state topic {self.state_topic} has {has} partition(s), {self.topic} has "
                                    f"{partitions}: give it as many (kafka-topics --alter --partitions {partitions})")
            self.sends.producer.partitions_for(self.state_topic)  # its metadata now, not during an outage
        return self.reader

    def restore(self, tps: list[Any]) -> None:
        """Each partition's counter from the state topic, read on from its committed offset."""
        if not tps:
            return
        began = time.monotonic()
        reader = self._state_reader()
        if not self._ready():
            return  # a stop came first
        committed = {tp: self._retried("read the committed offset", self.consumer.committed, tp) for tp in tps}
        entries, notes = until_not_behind(
            lambda: self._retried("read the state topic", reader.read, [tp.partition for tp in tps]),
            lambda read: [self.state.restore(tp.partition, read[tp.partition], committed[tp]) for tp in tps])
        for tp in tps:
            self._seek(tp, committed[tp])
        for note in filter(None, notes):
            status(f"consumer: {note}")
        counters = self.counting.partitions.counters
        windows = sum(counters[tp.partition].open_windows + counters[tp.partition].kept_windows for tp in tps)
        size = sum(len(v) for p in entries.values() for v in p.values())
        status(f"consumer: restored partition(s) {', '.join(str(tp.partition) for tp in tps)} from "
               f"{self.state_topic}: {windows:,} windows, {size / 1e6:.1f} MB in {time.monotonic() - began:.2f} s; "
               f"reading on from offset(s) {', '.join(str(committed[tp]) for tp in tps)}")

    def rewind_to_checkpoint(self) -> None:
        """What a restart would do, without one: drop the work since the last checkpoint (its
        transaction is aborted) and restore every owned partition."""
        status(f"consumer: {self.rewind}; going on from the last checkpoint")
        if not self.rebuilt and self._ready():  # a new producer has nothing to abort
            try:
                self._until("transaction not aborted", self.transactions.abort,
                            time.monotonic() + TRANSACTION_TIMEOUT_MS / 1000)
                self._began()
            except TransactionFailed as exc:
                self._failed(exc)
        self.rebuilt = False
        self.counting.restart()
        self.state.reset()
        self.partials_out.reset()
        self.merger = None
        self.positions.clear()
        self.restored.clear()
        self.last_frame.clear()
        self.watermark_at_last_frame.clear()
        self.rewind = None
        self.rewinds += 1
        self.assignment_changed = True


class Rebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's network loop, so it only marks what the loop must do (no I/O here)."""

    def __init__(self, run: KafkaRun):
        self.run = run

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Partitions kept through a rebalance keep their state; on_partitions_assigned tells."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.run.assignment_changed = True

    def on_partitions_lost(self, lost: Any) -> None:
        if self.run.restored:
            self.run.rewind = "the group dropped this consumer (its session expired)"


def run_kafka(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
    stop = Stop()
    outage = Outage("consumer", settings["BROKER_WAIT_SECONDS"])
    consumer = kafka_io.consumer(settings)
    partitions = len(consumer.partitions_for_topic(settings["TOPIC"]) or ())  # 0: not there yet
    partials = partitions > 1  # the merger makes the records (runtime/merging.py)
    kafka_io.create_topics({**settings, "TOPIC_PARTITIONS": partitions},
                           roles=["OUTPUT_TOPIC", "DLQ_TOPIC", *(["STATE"] if partitions else []),
                                  *(["PARTIALS"] if partials else [])])
    group = settings["CONSUMER_GROUP"]
    transactional_id = f"{group}-{settings['INSTANCE_ID'] or socket.gethostname()}"
    outputs = [settings["OUTPUT_TOPIC"], settings["DLQ_TOPIC"], *([partials_topic(settings["OUTPUT_TOPIC"])] if partials else [])]
    sends = kafka_io.checked_sends(kafka_io.producer(settings, transactional_id), settings, outputs)
    counting = Counting(settings, Records(args.quiet, sends, settings["OUTPUT_TOPIC"]),
                        KafkaDeadLetters(sends, settings["DLQ_TOPIC"]), partials)
    run = KafkaRun(consumer, counting, sends, outage, settings, stop, transactional_id)
    run.partitions_at_start = partitions
    status(f"consumer: exactly once into {settings['OUTPUT_TOPIC']} and {settings['DLQ_TOPIC']} (read them with "
           f"read_committed): a checkpoint every {settings['CHECKPOINT_SECONDS']:g} s commits records, dead letters, "
           f"state ({run.state_topic}) and offsets in one transaction (id {transactional_id})")
    if partials and settings["EMIT_EARLY_EVERY"]:
        status(f"consumer: EMIT_EARLY_EVERY={settings['EMIT_EARLY_EVERY']:g} is for a topic of one partition: of "
               f"{partitions}, the merger publishes final records and corrections only")
    consumer.subscribe([settings["TOPIC"], *([run.partials_topic] if partials else [])], listener=Rebalance(run))
    targets: dict[Any, int] | None = None
    flushed = False  # drained: the merger merges on until every partition's flushed input is in
    last_checkpoint = time.monotonic()
    try:
        while not stop.now:
            polled = consumer.poll(timeout_ms=200)
            if run.assignment_changed:
                run.follow_assignment()
            if run.rewind:
                run.rewind_to_checkpoint()  # what this poll returned is read again from the checkpoint
                targets = None
                continue
            for tp, records in polled.items():
                if tp in run.restored and tp not in run.fresh and not run.rewind:  # fresh: read again
                    (run.merge if tp == run.partials_tp else run.process)(tp, records)
            run.fresh.clear()
            if run.rewind:  # a transaction failed: nothing more is sent until the rewind
                continue
            if flushed and run.merged_all():
                if run.checkpoint():
                    break
                continue
            if targets is None and not flushed and (args.exit_at_end or stop.drain) and consumer.assignment():
                targets = run.end_offsets(run.inputs())
            if targets is not None and run.caught_up(targets):
                counting.flush_all()
                targets = None
                if run.checkpoint():  # the flushed windows, their records and the offsets together
                    flushed = True
                    if run.merged_all():
                        break
                continue
            if not any(tp.topic == run.topic for tp in polled):
                run.idle_advance(settings["IDLE_FLUSH_SECONDS"])
                if counting.early.due():
                    counting.emit_provisional()
            if time.monotonic() - last_checkpoint >= settings["CHECKPOINT_SECONDS"]:
                run.checkpoint()
                last_checkpoint = time.monotonic()
            if counting.meter.due():
                status(counting.status_line(run.lag()) + (run.merger.status if run.merger else "") + outage.line())
        if stop.now:
            stopped = run.checkpoint()  # False with a rewind due
            status("consumer: stopped; " + ("everything read is checkpointed" if stopped else
                   "what came after the last checkpoint is read again on restart"))
    except (SendFailed, FencedOut):
        kafka_io.close_producer(sends.producer, 0)
        raise
    finally:
        consumer.close(autocommit=False, timeout_ms=int(BROKER_CALL_SECONDS * 1000))
        for reader in (run.reader, run.partials_reader):
            if reader is not None:
                reader.close()
    kafka_io.close_producer(sends.producer, BROKER_CALL_SECONDS)
    rewound = f"; went back to the last checkpoint {run.rewinds} time(s)" if run.rewinds else ""
    status(counting.summary() + f"; {run.checkpoints:,} checkpoints" + rewound +
           " (the counts are the partitions' own, from the start of their streams, through restores)")
    return 0
