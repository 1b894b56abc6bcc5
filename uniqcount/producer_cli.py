"""producer.py: a JSON Lines file (plain or gzip) or stdin -> one Kafka message per line.

Each line's bytes go unchanged (nothing is re-serialised); blank lines are skipped and counted.
Lines go out a block at a time (block_producer.py): what one read of the input gave, up to
PRODUCER_BATCH_BYTES, becomes one record batch.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import deque
from typing import Any, Iterator

from kafka.producer.future import FutureProduceResult
from tqdm import tqdm

from . import config, kafka_io
from .block_producer import BlockSender
from .frames import InvalidFrame, parse_frame
from .progress import Meter, status
from .sources import Input, InputError

SETTINGS = ["BOOTSTRAP_SERVERS", "TOPIC", "PRODUCER_COMPRESSION", "PRODUCER_BATCH_BYTES", "SAMPLE_PATH",
            "BROKER_WAIT_SECONDS"]
IN_FLIGHT_BYTES = 32 << 20


class Pacer:
    """--rate X: frame with event time t goes out (t - first)/X seconds after the first one."""

    def __init__(self, speed: float):
        self.speed = speed
        self.first_ts: int | None = None
        self.started = 0.0

    def runs(self, frames: list[bytes]) -> Iterator[list[bytes]]:
        """`frames` in runs that are due now, sleeping before each run until it is."""
        run: list[bytes] = []
        for frame in frames:
            delay = self._delay(frame)
            if delay > 0.002:
                if run:
                    yield run
                    run = []
                time.sleep(delay)
            run.append(frame)
        if run:
            yield run

    def _delay(self, frame: bytes) -> float:
        try:
            _, ts = parse_frame(frame)
        except InvalidFrame:
            return 0.0
        if self.first_ts is None:
            self.first_ts, self.started = ts, time.monotonic()
        return self.started + (ts - self.first_ts) / self.speed - time.monotonic()


class Failures:
    """Counts frames the broker did not acknowledge; keeps the first error to show. Called from
    the producer's sender thread."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def __call__(self, frames: int, exc: BaseException) -> None:
        self.count += frames
        self.first = self.first or f"{type(exc).__name__}: {exc}"


class InFlight:
    """kafka-python 3 has no `buffer_memory` bound: a producer reading faster than the broker
    acknowledges would hold the whole input in memory (1.5 GB for the canonical sample). After each
    block, this waits for the oldest blocks' batches until at most `limit` bytes are unacknowledged."""

    def __init__(self, limit: int):
        self.limit = limit
        self.blocks: deque[tuple[FutureProduceResult, int]] = deque()
        self.bytes = 0

    def sent(self, last: FutureProduceResult, size: int) -> None:
        self.blocks.append((last, size))
        self.bytes += size
        while self.bytes > self.limit:
            future, size = self.blocks.popleft()
            self.bytes -= size
            future.wait()  # failures are counted by Failures


def run(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    path = args.input or str(config.REPO / settings["SAMPLE_PATH"])
    source = Input(path)
    kafka_io.require_broker(settings["BOOTSTRAP_SERVERS"])
    producer = kafka_io.producer(settings)
    topic = settings["TOPIC"]
    failures = Failures()
    sender = BlockSender(producer, topic, failures)
    pacer = Pacer(args.rate) if args.rate else None
    meter = Meter(0)
    bar = tqdm(total=source.size, unit="B", unit_scale=True, desc=f"producing to {topic}",
               disable=not sys.stderr.isatty() or source.size is None, file=sys.stderr)
    in_flight = InFlight(IN_FLIGHT_BYTES)
    read_size = max(settings["PRODUCER_BATCH_BYTES"] * 7 // 8, 1)  # room for the records' overhead
    for batch in source.batches(size=read_size, limit=args.limit):
        for due in pacer.runs(batch) if pacer else (batch,):
            futures = sender.send(due)
        size = sum(map(len, batch))
        in_flight.sent(futures[-1], size)
        meter.add(len(batch), size)
        if not bar.disable:
            position = source.position() or 0
            bar.update(position - bar.n)
            bar.set_postfix_str(f"{meter.frames:,} frames, {meter.frame_rate:,.0f}/s")
    producer.flush()  # waits for every acknowledgement
    producer.close()
    bar.close()
    source.close()
    status(f"producer: {meter.rates()} to {topic} from {source.name}; "
           f"{source.blank_lines:,} blank lines skipped; {failures.count:,} not acknowledged")
    if failures.count:
        status(f"error: {failures.count:,} frames were not acknowledged by the broker: {failures.first}")
        return 1
    return 0


def build_parser() -> config.OneLineParser:
    parser = config.OneLineParser(prog="producer.py", description=__doc__,
                                     epilog="Settings come from flags > environment > config.env > defaults.")
    parser.add_argument("--input", metavar="PATH",
                        help="JSON Lines file, plain or gzip (told by its magic bytes), or '-' for stdin "
                             "[default: SAMPLE_PATH]")
    parser.add_argument("--limit", type=config.flag_type(config.at_least(0)), metavar="N", help="send at most N frames")
    parser.add_argument("--rate", type=float, metavar="X",
                        help="replay at X times event-time speed (e.g. 1 = real time, 60 = a minute per "
                             "second); default: as fast as possible")
    config.add_flags(parser, SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    settings = config.from_args(args)
    try:
        return run(args, settings)
    except (InputError, kafka_io.BrokerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
