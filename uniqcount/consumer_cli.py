"""consumer.py: frames (Kafka topic, file or stdin) -> exact unique users per UTC minute.

Records go to the output topic (key `minute:<window_start>`) and, one JSON line each, to stdout.
Frames that are not counted go to the dead-letter topic (with --input: to --dlq PATH, or counted).
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

from kafka import OffsetAndMetadata

from . import config, kafka_io
from .counting import Counting
from .outputs import CountedOnly, DeadLetters, FileDeadLetters, KafkaDeadLetters, OutputError, Records
from .progress import status
from .resume import Resume, decode_metadata, earliest, encode_metadata
from .sources import Input, InputError

SETTINGS = ["BOOTSTRAP_SERVERS", "TOPIC", "CONSUMER_GROUP", "OUTPUT_TOPIC", "DLQ_TOPIC", "ALLOWED_LATENESS",
            "LATE_RETENTION", "OUTLIER_JUMP", "GRANULARITIES", "EXACT_UP_TO", "HLL_LG_K", "EMIT_EARLY_EVERY", "IDLE_FLUSH_SECONDS", "STATUS_INTERVAL",
            "FETCH_MAX_BYTES", "MAX_PARTITION_FETCH_BYTES", "MAX_POLL_RECORDS",
            "PRODUCER_COMPRESSION", "PRODUCER_LINGER_MS", "PRODUCER_BATCH_BYTES"]
COMMIT_INTERVAL = 5.0


def run_input(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    source = Input(args.input)
    dead_letters: DeadLetters = FileDeadLetters(args.dlq) if args.dlq else CountedOnly()
    producer = None
    if args.OUTPUT_TOPIC is not None:  # with --input, Kafka output only when asked for
        kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
        kafka_io.create_topics(settings, roles=["OUTPUT_TOPIC"])
        producer = kafka_io.producer(settings)
    counting = Counting(settings, Records(args.quiet, producer, settings["OUTPUT_TOPIC"]), dead_letters)
    for batch in source.batches():
        counting.process(batch, batch)
        if counting.meter.due():
            status(counting.status_line())
    counting.flush_all()
    source.close()
    dead_letters.close()
    if producer is not None:
        producer.close()
    blank = f"; {source.blank_lines:,} blank lines skipped" if source.blank_lines else ""
    status(counting.summary() + blank)
    return 0


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
    """The consumer loop's bookkeeping: positions, resume points, commits, lag, idleness."""

    def __init__(self, consumer: Any, counting: Counting, producer: Any):
        self.consumer = consumer
        self.counting = counting
        self.producer = producer
        self.positions: dict[Any, int] = {}
        self.batches = 0
        self.resumed = False
        self.last_frame = time.monotonic()
        self.watermark_at_last_frame: int | None = None

    def process(self, tp: Any, records: list[Any]) -> None:
        windows = self.counting.windows
        if not self.resumed:
            self.resumed = True
            committed = self.consumer.committed(tp, metadata=True)
            windows.resume(*decode_metadata(committed.metadata if committed else None))
        offsets = dict(self.positions)
        offsets.setdefault(tp, records[0].offset)
        self.batches += 1
        resume = Resume(self.batches, offsets, windows.max_ts, windows.watermark)
        self.counting.process([r.value or b"" for r in records], records, resume)  # None: a tombstone
        self.positions[tp] = records[-1].offset + 1
        self.last_frame = time.monotonic()
        self.watermark_at_last_frame = windows.watermark

    def caught_up(self, ends: dict[Any, int]) -> bool:
        return all(self.positions.get(tp, self.consumer.position(tp)) >= end for tp, end in ends.items())

    def lag(self) -> int | None:
        highwater = {tp: self.consumer.highwater(tp) for tp in self.consumer.assignment()}
        if not highwater or any(h is None for h in highwater.values()):
            return None
        return sum(max(h - self.positions.get(tp, h), 0) for tp, h in highwater.items())

    def idle_advance(self, idle_after: float) -> None:
        """Caught up and idle: event time moves on with the wall clock since the last frame. Never
        while behind (lag > 0): replayed history must close windows by its own event time."""
        idle = time.monotonic() - self.last_frame
        if idle < idle_after or self.lag() != 0:
            return
        windows = self.counting.windows
        windows.settle()
        if self.watermark_at_last_frame is None:
            self.watermark_at_last_frame = windows.watermark
        if self.watermark_at_last_frame is not None:
            self.counting.advance_watermark(self.watermark_at_last_frame + int(idle))

    def commit(self) -> None:
        """Output first: a committed offset never outruns the records and dead letters it led to."""
        self.producer.flush()
        windows = self.counting.windows
        offsets, first = earliest(windows.resume_points(), self.positions)
        if not offsets:
            return
        state = (first.max_ts, first.watermark) if first else (windows.max_ts, windows.watermark)
        metadata = encode_metadata(*state, windows.finished_until)
        self.consumer.commit({tp: OffsetAndMetadata(o, metadata, -1) for tp, o in offsets.items()})


def run_kafka(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
    kafka_io.create_topics(settings, roles=["OUTPUT_TOPIC", "DLQ_TOPIC"])
    stop = Stop()
    consumer = kafka_io.consumer(settings)
    consumer.subscribe([settings["TOPIC"]])
    producer = kafka_io.producer(settings)
    counting = Counting(settings, Records(args.quiet, producer, settings["OUTPUT_TOPIC"]),
                        KafkaDeadLetters(producer, settings["DLQ_TOPIC"]))
    run = KafkaRun(consumer, counting, producer)
    targets: dict[Any, int] | None = None
    last_commit = time.monotonic()
    while not stop.now:
        polled = consumer.poll(timeout_ms=200)
        for tp, records in polled.items():
            run.process(tp, records)
        if targets is None and (args.exit_at_end or stop.drain) and consumer.assignment():
            targets = consumer.end_offsets(list(consumer.assignment()))
        if targets is not None and run.caught_up(targets):
            run.commit()  # before the flush: a restart rebuilds the windows the flush emits, if more frames come
            counting.flush_all()
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
            status(counting.status_line(run.lag()))
    if stop.now:
        run.commit()
        status("consumer: stopped; what was in memory is rebuilt from the committed offsets on restart")
    consumer.close()
    producer.close()
    status(counting.summary())
    return 0


def build_parser() -> config.OneLineParser:
    parser = config.OneLineParser(
        prog="consumer.py", description=__doc__,
        epilog="Settings come from flags > environment > config.env > defaults. "
               "SIGUSR1 makes a running consumer read up to the current end, emit everything and exit.")
    parser.add_argument("--input", metavar="PATH",
                        help="read a JSON Lines file (plain or gzip) or '-' for stdin instead of Kafka; "
                             "prints to stdout, and to Kafka only with --output-topic")
    parser.add_argument("--dlq", metavar="PATH",
                        help="with --input: write each frame not counted to PATH as `reason<TAB>frame` lines "
                             "(without it they are only counted)")
    parser.add_argument("--exit-at-end", action="store_true",
                        help="stop once caught up with the end offsets seen at start, emitting open windows")
    parser.add_argument("--quiet", action="store_true", help="do not print records on stdout")
    config.add_flags(parser, SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dlq and not args.input:
        parser.error("--dlq is for --input; from Kafka, dead letters go to DLQ_TOPIC")
    settings = config.from_args(args)
    try:
        return run_input(args, settings) if args.input else run_kafka(args, settings)
    except (InputError, OutputError, kafka_io.BrokerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
