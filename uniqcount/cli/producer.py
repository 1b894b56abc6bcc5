"""producer.py: a JSON Lines file (plain or gzip) or stdin -> one Kafka message per line.

Each line's bytes go unchanged (nothing is re-serialised); blank lines are skipped and counted.
Lines go out a block at a time (block_producer.py): what one read of the input gave, up to
PRODUCER_BATCH_BYTES, becomes one record batch.
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
import uuid
from collections import deque
from typing import Callable, Iterator, Sequence

from kafka.errors import KafkaError
from kafka.producer.future import FutureProduceResult
from tqdm import tqdm

from uniqcount import REPO
from uniqcount.core.frames import InvalidFrame, parse_frame
from uniqcount.kafka_client import kafka_io, rights
from uniqcount.kafka_client.block_producer import BlockSender
from uniqcount.kafka_client.internals import LibraryMismatch
from uniqcount.kafka_client.keyed import UidPartitions
from uniqcount.kafka_client.landed import Landed, read_back, source_id
from uniqcount.kafka_client.probe import any_answers
from uniqcount.kafka_client.rights import NotAllowed, Right
from uniqcount.kafka_client.security import tls_context
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.outage import BrokerLost, Outage
from uniqcount.runtime.progress import Meter, error, status
from uniqcount.runtime.setting_types import at_least
from uniqcount.runtime.sources import Input, InputError

SETTINGS = [*config.CONNECTION, "TOPIC", "PRODUCER_COMPRESSION", "PRODUCER_BATCH_BYTES", "SAMPLE_PATH",
            "BROKER_WAIT_SECONDS"]
IN_FLIGHT_BYTES = 32 << 20
OUTAGE_AFTER = 5.0  # seconds a batch may wait for its acknowledgement before the broker counts as away


class Pacer:
    """--rate X: frame with event time t goes out (t - first)/X seconds after the first one."""

    def __init__(self, speed: float):
        self.speed = speed
        self.first_ts: int | None = None
        self.started = 0.0

    def runs(self, frames: list[bytes]) -> Iterator[slice]:
        """`frames` in runs (slices of it) that are due now, sleeping before each run until it is."""
        start = 0
        for index, frame in enumerate(frames):
            delay = self._delay(frame)
            if delay > 0.002:
                if index > start:
                    yield slice(start, index)
                    start = index
                time.sleep(delay)
        if start < len(frames):
            yield slice(start, len(frames))

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


class TooLarge:
    """Frames larger than the topic takes, even compressed: never sent, each named by its line."""

    def __init__(self, topic: str, limit: int | None):
        self.topic = topic
        self.limit = limit
        self.count = 0

    def __call__(self, line: int, size: int) -> None:
        self.count += 1
        status(f"producer: line {line:,} ({size:,} bytes) is larger than {self.topic} takes "
               f"(max.message.bytes {self.limit:,}), even compressed: not sent")


class InFlight:
    """kafka-python 3 has no `buffer_memory` bound: a producer reading faster than the broker
    acknowledges would hold the whole input in memory (1.5 GB for the canonical sample). After each
    block, this waits for the oldest blocks' batches until at most `limit` bytes are unacknowledged.
    A block unacknowledged for OUTAGE_AFTER seconds means the broker is away: said (Outage) until
    it is back. kafka-python retries until BROKER_WAIT_SECONDS, then fails the block (Failures)."""

    def __init__(self, limit: int, outage: Outage, answers: Callable[[], bool] = lambda: False):
        """`answers`: some broker of the cluster answers (a node away, not the whole cluster)."""
        self.limit = limit
        self.outage = outage
        self.answers = answers
        self.blocks: deque[tuple[FutureProduceResult, int, float]] = deque()
        self.bytes = 0

    def sent(self, last: FutureProduceResult, size: int) -> None:
        self.blocks.append((last, size, time.monotonic()))
        self.bytes += size
        while self.bytes > self.limit:
            self._wait_oldest()
        while self.blocks and self.blocks[0][0].is_done:
            self._wait_oldest()
        if self.blocks:
            self._away_since(self.blocks[0][2])

    def _away_since(self, sent_at: float) -> None:
        """The oldest block unacknowledged for OUTAGE_AFTER seconds: the broker is away."""
        if time.monotonic() - sent_at > OUTAGE_AFTER:
            self.outage.failed(f"{len(self.blocks):,} batches unacknowledged", self.answers())

    def _wait_oldest(self) -> None:
        future, size, sent_at = self.blocks[0]
        while not future.wait(1.0):  # failures are counted by Failures
            self._away_since(sent_at)
        self.blocks.popleft()
        self.bytes -= size
        self.outage.ended()

    def drain(self) -> None:
        while self.blocks:
            self._wait_oldest()


def send(sender: BlockSender, keyed: UidPartitions | None, values: list[bytes], lines: Sequence[int],
         flush: bool = False) -> list[FutureProduceResult]:
    """A block to the partitions in turn; or (--key uid) each frame to its user's partition, a block
    once a partition has a whole one (`flush`: whatever each has now)."""
    if keyed is None:
        return sender.send(values, lines)
    return [future for partition, block, block_lines, keys in keyed.add(values, lines, flush)
            for future in sender.send(block, block_lines, keys, partition)]


def run(args: argparse.Namespace, settings: Settings) -> int:
    path = args.input or str(REPO / settings.sample_path)
    if args.resume and path == "-":
        raise InputError("--resume needs a file: what stdin gave before is gone")
    if args.resume and args.key:
        raise InputError("--resume and --key uid do not go together: a keyed load is sent again whole "
                         "(the consumers count each frame once only from a topic emptied first)")
    source = Input(path)
    topic = settings.topic
    kafka_io.require_broker(settings)
    rights.require(settings, [Right("WRITE", "topic", topic), *([Right("READ", "topic", topic)] if args.resume else [])],
                   "producer", kafka_io.topic_specs(settings, ["TOPIC"]))
    this_input = uuid.uuid4().hex[:16].encode() if path == "-" else source_id(path)
    landed = read_back(settings, topic, this_input, 2 * IN_FLIGHT_BYTES) if args.resume else Landed()
    if args.resume:
        status(f"producer: --resume: {landed.lines:,} lines of {source.name} are in {topic} already; "
               "sending the others")
    producer = kafka_io.producer(settings)
    failures = Failures()
    producer.partitions_for(topic)  # waits for the topic's metadata (a broker may create it now)
    too_large = TooLarge(topic, kafka_io.max_message_bytes(settings, topic))
    sender = BlockSender(producer, topic, failures, too_large.limit, too_large, this_input)
    read_size = max(settings.producer_batch_bytes * 7 // 8, 1)  # room for the records' overhead
    keyed = UidPartitions(len(producer.partitions_for(topic)), read_size) if args.key else None
    pacer = Pacer(args.rate) if args.rate else None
    meter = Meter(0)
    bar = tqdm(total=source.size, unit="B", unit_scale=True, desc=f"producing to {topic}",
               disable=not sys.stderr.isatty() or source.size is None, file=sys.stderr)
    tls = tls_context(settings)
    in_flight = InFlight(IN_FLIGHT_BYTES, Outage("producer", settings.broker_wait_seconds),
                         lambda: any_answers(settings.bootstrap_servers, tls=tls))
    try:
        for lines, batch in source.numbered_batches(size=read_size, limit=args.limit):
            size = sum(map(len, batch))
            meter.add(len(batch), size)
            if args.resume:
                lines, batch = landed.missing(lines, batch)
                if not batch:
                    continue
            futures = [future for due in (pacer.runs(batch) if pacer else (slice(None),))
                       for future in send(sender, keyed, batch[due], lines[due], flush=pacer is not None)]
            if futures:
                in_flight.sent(futures[-1], size)
            if failures.count:  # what follows a refused block would only leave gaps: --resume fills them
                break
            if not bar.disable:
                position = source.position() or 0
                bar.update(position - bar.n)
                bar.set_postfix_str(f"{meter.frames:,} frames, {meter.frame_rate:,.0f}/s")
        last = send(sender, keyed, [], [], flush=True)  # what waits for its partition's block to fill
        if last:
            in_flight.sent(last[-1], 0)
        in_flight.drain()  # every acknowledgement, or the failure, of every block
    except BrokerLost as exc:
        kafka_io.close_producer(producer, 0)
        status(f"error: {exc}; `producer.py --resume` sends what is missing")
        return 1
    except KeyboardInterrupt:
        kafka_io.close_producer(producer, 5)  # a few seconds for the blocks on their way
        status(f"producer: interrupted after {meter.frames:,} frames; `producer.py --resume` with the same "
               "input sends the rest, none twice")
        return 130
    producer.close()
    bar.close()
    source.close()
    skipped = f"; {landed.lines:,} lines already in the topic" if args.resume else ""
    refused = f"; {too_large.count:,} too large, not sent" if too_large.count else ""
    status(f"producer: {meter.rates()} to {topic} from {source.name}; "
           f"{source.blank_lines:,} blank lines skipped{skipped}{refused}; {failures.count:,} not acknowledged")
    if failures.count:
        status(f"error: {failures.count:,} frames were not acknowledged by the broker: {failures.first} "
               f"(kafka-python retries for BROKER_WAIT_SECONDS={settings.broker_wait_seconds:.0f}); "
               "`producer.py --resume` sends what is missing")
        return 1
    return 0


def build_parser() -> config.OneLineParser:
    parser = config.OneLineParser(prog="producer.py", description=__doc__,
                                     epilog="Settings come from flags > environment > config.env > defaults.")
    parser.add_argument("--input", metavar="PATH",
                        help="JSON Lines file, plain or gzip (told by its magic bytes), or '-' for stdin "
                             "[default: SAMPLE_PATH]")
    parser.add_argument("--limit", type=config.flag_type(at_least(0)), metavar="N", help="send at most N frames")
    parser.add_argument("--resume", action="store_true",
                        help="continue a load of the same input that was killed: the lines already in the topic "
                             "(read back from it) are not sent again")
    parser.add_argument("--key", choices=["uid"],
                        help="key each frame by its top-level uid, in the partition Kafka's default partitioner "
                             "(murmur2) gives it, as Java and librdkafka producers do: a user's frames all go to one "
                             "partition (then consumers may set INPUT_KEYED_BY_UID=true); default: no key, whole "
                             "blocks to the partitions in turn")
    parser.add_argument("--rate", type=float, metavar="X",
                        help="replay at X times event-time speed (e.g. 1 = real time, 60 = a minute per "
                             "second); default: as fast as possible")
    config.add_flags(parser, SETTINGS)
    return parser


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C from here: KeyboardInterrupt, handled
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    settings = config.from_args(args)
    try:
        return run(args, settings)
    except (InputError, kafka_io.BrokerUnavailable, LibraryMismatch, NotAllowed) as exc:
        return error(str(exc))
    except KafkaError as exc:  # what kafka-python gave up on, and no retry can mend
        return error(f"Kafka: {type(exc).__name__}: {exc}")
    except KeyboardInterrupt:
        status("producer: interrupted")
        return 130
