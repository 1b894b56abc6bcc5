"""consumer.py: frames (Kafka topic, file or stdin) -> exact unique users per UTC minute.

Records go to the output topic (key `minute:<window_start>`) and, one JSON line each, to stdout.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from collections import Counter
from typing import Any

from kafka import OffsetAndMetadata

from . import config, kafka_io
from .frames import InvalidFrame, parse_frame
from .progress import Meter, status
from .records import encode, iso_utc, record_key, window_record
from .sources import Input, InputError
from .windows import MinuteWindows, Window

SETTINGS = ["BOOTSTRAP_SERVERS", "TOPIC", "CONSUMER_GROUP", "OUTPUT_TOPIC", "ALLOWED_LATENESS", "IDLE_FLUSH_SECONDS",
            "STATUS_INTERVAL", "FETCH_MAX_BYTES", "MAX_PARTITION_FETCH_BYTES", "MAX_POLL_RECORDS",
            "PRODUCER_COMPRESSION", "PRODUCER_LINGER_MS", "PRODUCER_BATCH_BYTES"]
COMMIT_INTERVAL = 5.0


class Counting:
    """Parse, count, emit: the same path for every source."""

    def __init__(self, settings: dict[str, Any], quiet: bool, producer: Any = None):
        self.windows = MinuteWindows(settings["ALLOWED_LATENESS"])
        self.invalid: Counter[str] = Counter()
        self.meter = Meter(settings["STATUS_INTERVAL"])
        self.quiet = quiet
        self.producer = producer
        self.output_topic = settings["OUTPUT_TOPIC"]
        self.emitted = 0

    def process(self, values: list[bytes], resume_from: Any = None) -> None:
        pairs = []
        append = pairs.append
        for value in values:
            try:
                append(parse_frame(value))
            except InvalidFrame as exc:
                self.invalid[exc.reason] += 1
        self.meter.add(len(values), sum(map(len, values)))
        self.windows.add_many(pairs, resume_from)
        self.emit(self.windows.take_closed())

    def emit(self, windows: list[Window]) -> None:
        lines = []
        for window in windows:
            record = window_record(window)
            data = encode(record)
            lines.append(data)
            if self.producer is not None:
                self.producer.send(self.output_topic, key=record_key(record), value=data)
        self.emitted += len(windows)
        if lines and not self.quiet:
            sys.stdout.buffer.write(b"\n".join(lines) + b"\n")
            sys.stdout.buffer.flush()

    def flush_all(self) -> None:
        self.windows.flush()
        self.emit(self.windows.take_closed())
        if self.producer is not None:
            self.producer.flush()

    def status_line(self) -> str:
        w = self.windows
        current = iso_utc(w.max_ts - w.max_ts % 60)[:16] + "Z" if w.max_ts is not None else "-"
        invalid = sum(self.invalid.values())
        return (f"consumer: {self.meter.frames:,} frames ({self.meter.frame_rate:,.0f}/s), "
                f"minute {current}, open {len(w.open)}, emitted {self.emitted}, invalid {invalid:,}, "
                f"late {w.late_frames:,}")

    def summary(self) -> str:
        w = self.windows
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(self.invalid.items())) or "none"
        return (f"consumer: done: {self.meter.rates()}; {self.emitted} minutes emitted; "
                f"counted {w.counted_frames:,}, late {w.late_frames:,}, invalid {sum(self.invalid.values()):,} "
                f"({reasons})")


def run_input(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    producer = None
    if args.OUTPUT_TOPIC is not None:  # with --input, Kafka output only when asked for
        kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
        producer = kafka_io.producer(settings)
    counting = Counting(settings, args.quiet, producer)
    source = Input(args.input)
    for batch in source.batches():
        counting.process(batch)
        if counting.meter.due():
            status(counting.status_line())
    counting.flush_all()
    blank = f"; {source.blank_lines:,} blank lines skipped" if source.blank_lines else ""
    status(counting.summary() + blank)
    return 0


class Stop:
    """SIGINT/SIGTERM: stop now (open windows stay open, offsets say where to resume).
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


def run_kafka(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
    stop = Stop()
    consumer = kafka_io.consumer(settings)
    consumer.subscribe([settings["TOPIC"]])
    counting = Counting(settings, args.quiet, kafka_io.producer(settings))
    positions: dict[Any, int] = {}
    targets: dict[Any, int] | None = None
    last_frame = last_commit = time.monotonic()

    def caught_up(ends: dict[Any, int]) -> bool:
        return all((positions[tp] if tp in positions else consumer.position(tp)) >= end
                   for tp, end in ends.items())

    def commit() -> None:
        counting.producer.flush()  # records first: a committed offset must never outrun its output
        resume = counting.windows.resume_point()
        offsets = resume if resume is not None else positions
        if offsets:
            consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})

    while not stop.now:
        polled = consumer.poll(timeout_ms=200)
        for tp, records in polled.items():
            resume_from = dict(positions)
            resume_from.setdefault(tp, records[0].offset)
            counting.process([r.value for r in records], resume_from)
            positions[tp] = records[-1].offset + 1
            last_frame = time.monotonic()
        if targets is None and (args.exit_at_end or stop.drain) and consumer.assignment():
            targets = consumer.end_offsets(list(consumer.assignment()))
        if targets is not None and caught_up(targets):
            counting.flush_all()
            commit()
            break
        now = time.monotonic()
        if not polled and counting.windows.open and now - last_frame >= settings["IDLE_FLUSH_SECONDS"]:
            highwater = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
            if all(h is not None for h in highwater.values()) and caught_up(highwater):
                counting.flush_all()
        if now - last_commit >= COMMIT_INTERVAL:
            commit()
            last_commit = now
        if counting.meter.due():
            status(counting.status_line())
    if stop.now:
        commit()
        status("consumer: stopped; open windows resume from the committed offsets")
    consumer.close()
    counting.producer.close()
    status(counting.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consumer.py", description=__doc__,
        epilog="Settings come from flags > environment > config.env > defaults. "
               "SIGUSR1 makes a running consumer read up to the current end, emit everything and exit.")
    parser.add_argument("--input", metavar="PATH",
                        help="read a JSON Lines file (plain or gzip) or '-' for stdin instead of Kafka; "
                             "prints to stdout, and to Kafka only with --output-topic")
    parser.add_argument("--exit-at-end", action="store_true",
                        help="stop once caught up with the end offsets seen at start, emitting open windows")
    parser.add_argument("--quiet", action="store_true", help="do not print records on stdout")
    config.add_flags(parser, SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = config.from_args(args)
    try:
        return run_input(args, settings) if args.input else run_kafka(args, settings)
    except (InputError, kafka_io.BrokerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
