"""consumer.py's Kafka loop: poll, count, send, commit; and what it does when the broker or the
group misbehaves.

- A broker that goes away (killed, restarting, unreachable) is waited for: polls return nothing,
  commits are retried every COMMIT_INTERVAL, the status line says since when, and the loop goes on
  where it was once the broker answers. Only an outage longer than BROKER_WAIT_SECONDS ends it,
  with one line (outage.BrokerLost); nothing unacknowledged was committed, so a restart loses nothing.
- Offsets are committed only once every record and dead letter before them is acknowledged
  (sends.Sends.settle), never past the first frame of anything still in memory (resume.py).
- A consumer that the group dropped (its session expired, e.g. the process was paused) or whose
  partitions moved is rewound: its state is rebuilt from the committed offsets, as a restart would.
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
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.outputs import KafkaDeadLetters, Records
from uniqcount.kafka_client.probe import any_answers
from uniqcount.runtime.progress import status
from uniqcount.runtime.resume import Resume, decode_metadata, earliest, encode_metadata
from uniqcount.kafka_client.sends import SendFailed, Sends

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

    def __init__(self, consumer: Any, counting: Counting, sends: Sends, outage: Outage, bootstrap: str):
        self.consumer = consumer
        self.counting = counting
        self.sends = sends
        self.outage = outage
        self.bootstrap = bootstrap
        self.positions: dict[Any, int] = {}
        self.batches = 0
        self.resumed = False
        self.rewind: str | None = None  # why the state must be rebuilt from the committed offsets
        self.rewinds = 0
        self.last_frame = time.monotonic()
        self.watermark_at_last_frame: int | None = None

    def process(self, tp: Any, records: list[Any]) -> None:
        windows = self.counting.windows
        if not self.resumed:
            self.resumed = True
            committed = self._retried("read the committed offset", self.consumer.committed, tp, metadata=True)
            windows.resume(*decode_metadata(committed.metadata if committed else None))
        offsets = dict(self.positions)
        offsets.setdefault(tp, records[0].offset)
        self.batches += 1
        resume = Resume(self.batches, offsets, windows.max_ts, windows.watermark)
        self.counting.process([r.value or b"" for r in records], records, resume)  # None: a tombstone
        self.positions[tp] = records[-1].offset + 1
        self.last_frame = time.monotonic()
        self.watermark_at_last_frame = windows.watermark

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
        for tp, end in ends.items():
            position = self.positions[tp] if tp in self.positions else \
                self._retried("read a position", self.consumer.position, tp)
            if position < end:
                return False
        return True

    def lag(self) -> int | None:
        highwater = {tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()}
        if not highwater or any(h is None for h in highwater.values()):
            return None
        return sum(max(h - self.positions.get(tp, h), 0) for tp, h in highwater.items())

    def idle_advance(self, idle_after: float) -> None:
        """Caught up and idle: event time moves on with the wall clock since the last frame. Never
        while behind (lag > 0): replayed history must close windows by its own event time; and not
        for the time the broker was away: the frames of that time may still come."""
        idle = time.monotonic() - max(self.last_frame, self.outage.ended_at)
        if idle < idle_after or self.outage.since is not None or self.lag() != 0:
            return
        windows = self.counting.windows
        windows.settle()
        if self.watermark_at_last_frame is None:
            self.watermark_at_last_frame = windows.watermark
        if self.watermark_at_last_frame is not None:
            self.counting.advance_watermark(self.watermark_at_last_frame + int(idle))

    def commit(self) -> bool:
        """Output first: a committed offset never outruns the records and dead letters it led to.
        False when the broker did not answer (tried again at the next interval)."""
        if not self.sends.settle(BROKER_CALL_SECONDS):
            self.outage.failed("results and dead letters not acknowledged")
            return False
        windows = self.counting.windows
        offsets, first = earliest(windows.resume_points(), self.positions)
        if not offsets:  # nothing to commit: ask the broker whether it is there at all
            if any_answers(self.bootstrap):
                self.outage.ended()
                return True
            self.outage.failed("no answer")
            return False
        state = (first.max_ts, first.watermark) if first else (windows.max_ts, windows.watermark)
        metadata = encode_metadata(*state, windows.finished_until)
        try:  # membership errors are not retriable: _tried raises them
            committed, _ = self._tried("commit", self.consumer.commit,
                                       {tp: OffsetAndMetadata(o, metadata, -1) for tp, o in offsets.items()})
        except MEMBERSHIP_LOST as exc:
            self.rewind = self.rewind or f"the group refused the commit ({type(exc).__name__})"
            return False
        return committed

    def rewind_to_committed(self) -> None:
        """What a restart would do, without one: forget the state and re-read from the committed
        offsets, judging every frame again against the committed watermark."""
        status(f"consumer: {self.rewind}; rebuilding the state from the committed offsets, as a restart would")
        self.sends.settle(BROKER_CALL_SECONDS)
        self.counting.restart()
        self.positions.clear()
        self.resumed = False
        self.rewind = None
        self.rewinds += 1
        for tp in self.consumer.assignment():
            offset = self._retried("read the committed offset", self.consumer.committed, tp)
            if offset is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, offset)


class Rebalance(ConsumerRebalanceListener):
    """Runs on kafka-python's network loop, so it only marks the run for a rewind (no I/O here)."""

    def __init__(self, run: KafkaRun):
        self.run = run

    def on_partitions_revoked(self, revoked: Any) -> None:
        """Partitions kept through a rebalance keep their positions; on_partitions_assigned checks."""

    def on_partitions_assigned(self, assigned: Any) -> None:
        moved = set(self.run.positions) - set(assigned)
        if moved:
            self.run.rewind = f"partitions {sorted(tp.partition for tp in moved)} moved to another consumer"

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
    run = KafkaRun(consumer, counting, sends, outage, settings["BOOTSTRAP_SERVERS"])
    consumer.subscribe([settings["TOPIC"]], listener=Rebalance(run))
    targets: dict[Any, int] | None = None
    last_commit = time.monotonic()
    try:
        while not stop.now:
            polled = consumer.poll(timeout_ms=200)
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
