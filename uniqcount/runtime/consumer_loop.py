"""consumer.py's Kafka loop: poll, count, send, commit; and what it does when the broker or the
group misbehaves.

- A broker that goes away (killed, restarting, unreachable) is waited for: polls return nothing,
  commits are retried every COMMIT_INTERVAL, the status line says since when, and the loop goes on
  where it was once the broker answers. Only an outage longer than BROKER_WAIT_SECONDS ends it,
  with one line (outage.BrokerLost); nothing unacknowledged was committed, so a restart loses nothing.
- Offsets are committed only once every record and dead letter before them is acknowledged
  (sends.Sends.settle), never past the first frame of anything still in memory (resume.py), each
  partition with its own event-time state in the commit metadata.
- Each partition it owns is counted on its own (core/merge.py). A partition that moves to another
  consumer is dropped (its new owner rebuilds it from the committed offset); one that comes is
  counted from its committed offset. Owning only some partitions of the topic, the consumer marks
  its records partial, and says so in one line.
- A consumer that the group dropped (its session expired, e.g. the process was paused) is rewound:
  its state is rebuilt from the committed offsets, as a restart would.
"""
from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from kafka import ConsumerRebalanceListener, OffsetAndMetadata
from kafka.errors import (CommitFailedError, IllegalGenerationError, KafkaError, RebalanceInProgressError,
                          UnknownMemberIdError)

from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.probe import any_answers
from uniqcount.kafka_client.record_batches import Record
from uniqcount.kafka_client.sends import SendFailed, Sends
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.outputs import KafkaDeadLetters, Records
from uniqcount.runtime.progress import status
from uniqcount.runtime.resume import Resume, decode_metadata, earliest, encode_metadata

COMMIT_INTERVAL = 5.0
BROKER_CALL_SECONDS = 5.0  # one try of a call to the broker (commit, offsets) before it counts as failed
MEMBERSHIP_LOST = (CommitFailedError, UnknownMemberIdError, IllegalGenerationError, RebalanceInProgressError)


def retriable(exc: KafkaError) -> bool:
    return bool(getattr(exc, "retriable", False))


class Stop:
    """SIGINT/SIGTERM: stop now (state in memory is rebuilt from the committed offsets on restart).
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
    """The consumer loop's bookkeeping: positions, resume points, commits, lag, idleness, rewinds."""

    def __init__(self, consumer: Any, counting: Counting, sends: Sends, outage: Outage, settings: dict[str, Any]):
        self.consumer = consumer
        self.counting = counting
        self.sends = sends
        self.outage = outage
        self.bootstrap = settings["BOOTSTRAP_SERVERS"]
        self.topic = settings["TOPIC"]
        self.positions: dict[Any, int] = {}
        self.resumed: set[Any] = set()
        self.owned: tuple[int, ...] | None = None  # the partitions counted, as last said
        self.assignment_changed = False
        self.rewind: str | None = None  # why the state must be rebuilt from the committed offsets
        self.rewinds = 0
        self.started = time.monotonic()
        self.last_frame: dict[Any, float] = {}
        self.watermark_at_last_frame: dict[Any, int | None] = {}

    def process(self, tp: Any, records: list[Any]) -> None:
        counter = self.counting.partitions.assign(tp.partition)
        if tp not in self.resumed:
            self.resumed.add(tp)
            committed = self._retried("read the committed offset", self.consumer.committed, tp, metadata=True)
            counter.resume(*decode_metadata(committed.metadata if committed else None))
        if type(records[0]) is not Record:  # kafka-python's own path (with deserializers): no library objects in the core
            records = [Record(r.topic, r.partition, r.offset, r.key, r.value) for r in records]
        resume = Resume(self.positions.get(tp, records[0].offset), counter.max_ts, counter.watermark)
        self.counting.process([r.value or b"" for r in records], records, resume, tp.partition)  # None: a tombstone
        self.positions[tp] = records[-1].offset + 1
        self.last_frame[tp] = time.monotonic()
        self.watermark_at_last_frame[tp] = counter.watermark

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

    def end_offsets(self) -> dict[Any, int] | None:
        _, ends = self._tried("end offsets", self.consumer.end_offsets, list(self.consumer.assignment()))
        return ends

    def caught_up(self, ends: dict[Any, int]) -> bool:
        return all(self._position(tp) >= end for tp, end in ends.items())

    def _position(self, tp: Any) -> int:
        if tp in self.positions:
            return self.positions[tp]
        return self._retried("read a position", self.consumer.position, tp)

    def lags(self) -> dict[Any, int | None]:
        """Per owned partition: records not read yet (None: the broker has not said)."""
        lags: dict[Any, int | None] = {}
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            lags[tp] = None if highwater is None else max(highwater - self.positions.get(tp, highwater), 0)
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
        for tp, lag in self.lags().items():
            idle = now - max(self.last_frame.get(tp, self.started), self.outage.ended_at)
            if idle < idle_after or lag != 0:
                continue
            if self.watermark_at_last_frame.get(tp) is None:  # a stream too short to start: start it
                counter = self.counting.partitions.assign(tp.partition)
                counter.settle()
                self.watermark_at_last_frame[tp] = counter.watermark
            watermark = self.watermark_at_last_frame[tp]
            self.counting.advance_idle(tp.partition, None if watermark is None else watermark + int(idle))

    def commit(self) -> bool:
        """Output first: a committed offset never outruns the records and dead letters it led to.
        False when the broker did not answer (tried again at the next interval)."""
        if not self.sends.settle(BROKER_CALL_SECONDS):
            self.outage.failed("results and dead letters not acknowledged")
            return False
        offsets = {}
        for tp, position in self.positions.items():
            counter = self.counting.partitions.counters.get(tp.partition)
            if counter is None:
                continue
            first = earliest(counter.resume_points())
            state = (first.max_ts, first.watermark) if first else (counter.max_ts, counter.watermark)
            offsets[tp] = OffsetAndMetadata(first.offset if first else position,
                                            encode_metadata(*state, counter.forget_until), -1)
        if not offsets:  # nothing to commit: ask the broker whether it is there at all
            if any_answers(self.bootstrap):
                self.outage.ended()
                return True
            self.outage.failed("no answer")
            return False
        try:  # membership errors are not retriable: _tried raises them
            committed, _ = self._tried("commit", self.consumer.commit, offsets)
        except MEMBERSHIP_LOST as exc:
            self.rewind = self.rewind or f"the group refused the commit ({type(exc).__name__})"
            return False
        return committed

    def follow_assignment(self) -> None:
        """After a rebalance: drop the partitions that went (their new owner counts them from the
        committed offsets), and say whether the records still cover the whole topic."""
        self.assignment_changed = False
        assigned = self.consumer.assignment()
        for tp in [tp for tp in self.positions if tp not in assigned]:
            self.counting.partitions.revoke(tp.partition)
            self.positions.pop(tp)
            self.resumed.discard(tp)
        owned = tuple(sorted(tp.partition for tp in assigned))
        for partition in owned:  # counted from now on: a partition with no frame yet holds the others back
            self.counting.partitions.assign(partition)
        total = self.consumer.partitions_for_topic(self.topic) or set()
        scope = owned if owned and len(owned) < len(total) else None
        self.counting.partitions.scope = scope
        if scope is not None and scope != self.owned:
            status(f"consumer: owns partitions {', '.join(map(str, owned))} of the {len(total)} of {self.topic}: "
                   "another consumer of the group reads the others, so its records are marked partial "
                   "(\"partial\": true, key ...:partial:" + ",".join(map(str, owned)) + "); "
                   "for exact answers of the whole topic run one consumer per group")
        self.owned = scope

    def rewind_to_committed(self) -> None:
        """What a restart would do, without one: forget the state and re-read from the committed
        offsets, judging every frame again against the committed watermark."""
        status(f"consumer: {self.rewind}; rebuilding the state from the committed offsets, as a restart would")
        self.sends.settle(BROKER_CALL_SECONDS)
        self.counting.restart()
        self.positions.clear()
        self.resumed.clear()
        self.last_frame.clear()
        self.watermark_at_last_frame.clear()
        self.rewind = None
        self.rewinds += 1
        self.assignment_changed = True
        for tp in self.consumer.assignment():
            offset = self._retried("read the committed offset", self.consumer.committed, tp)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)


class Rebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's network loop, so it only marks what the loop must do (no I/O here)."""

    def __init__(self, run: KafkaRun):
        self.run = run

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Partitions kept through a rebalance keep their state; on_partitions_assigned tells."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.run.assignment_changed = True

    def on_partitions_lost(self, lost: Any) -> None:
        if self.run.positions:
            self.run.rewind = "the group dropped this consumer (its session expired)"


def run_kafka(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
    kafka_io.create_topics(settings, roles=["OUTPUT_TOPIC", "DLQ_TOPIC"])
    stop = Stop()
    outage = Outage("consumer", settings["BROKER_WAIT_SECONDS"])
    consumer = kafka_io.consumer(settings)
    producer = kafka_io.producer(settings)
    sends = kafka_io.checked_sends(producer, settings, ["OUTPUT_TOPIC", "DLQ_TOPIC"])
    counting = Counting(settings, Records(args.quiet, sends, settings["OUTPUT_TOPIC"]),
                        KafkaDeadLetters(sends, settings["DLQ_TOPIC"]))
    run = KafkaRun(consumer, counting, sends, outage, settings)
    consumer.subscribe([settings["TOPIC"]], listener=Rebalance(run))
    targets: dict[Any, int] | None = None
    last_commit = time.monotonic()
    try:
        while not stop.now:
            polled = consumer.poll(timeout_ms=200)
            if run.assignment_changed:
                run.follow_assignment()
            if run.rewind:
                run.rewind_to_committed()  # what this poll returned is read again from there
                targets = None
                continue
            for tp, records in polled.items():
                run.process(tp, records)
            if targets is None and (args.exit_at_end or stop.drain) and consumer.assignment():
                targets = run.end_offsets()
            if targets is not None and run.caught_up(targets):
                if run.commit():  # before the flush: a restart rebuilds the windows the flush emits
                    counting.flush_all()
                    sends.settle(None)  # every last record acknowledged, or SendFailed
                    break
            if not polled:
                run.idle_advance(settings["IDLE_FLUSH_SECONDS"])
                if counting.early.due():
                    counting.emit_provisional()
            now = time.monotonic()
            if now - last_commit >= COMMIT_INTERVAL:
                run.commit()
                last_commit = now
            if counting.meter.due():
                status(counting.status_line(run.lag()) + outage.line())
        if stop.now:
            committed = run.commit()
            status("consumer: stopped; what was in memory is rebuilt from the committed offsets on restart"
                   + ("" if committed else " (the broker is away: the last commit could not be made)"))
    except SendFailed:
        kafka_io.close_producer(producer, 0)
        raise
    finally:
        consumer.close(autocommit=False, timeout_ms=int(BROKER_CALL_SECONDS * 1000))
    kafka_io.close_producer(producer, BROKER_CALL_SECONDS)
    rewound = f"; rebuilt from the committed offsets {run.rewinds} time(s)" if run.rewinds else ""
    status(counting.summary() + rewound)
    return 0
