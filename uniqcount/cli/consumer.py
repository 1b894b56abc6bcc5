"""consumer.py: frames (Kafka topic, file or stdin) -> unique users per UTC minute, hour, day, ISO
week, month and year (GRANULARITIES; exact up to EXACT_UP_TO, HyperLogLog beyond).

Records go to the output topic (key `<granularity>:<window_start>`) and, one JSON line each, to stdout.
Frames that are not counted go to the dead-letter topic (with --input: to --dlq PATH, or counted).
"""
from __future__ import annotations

import argparse

from kafka.errors import KafkaError

from uniqcount.core import frames
from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.internals import LibraryMismatch
from uniqcount.kafka_client.rights import NotAllowed
from uniqcount.kafka_client.sends import SendFailed
from uniqcount.runtime import collector, config, metrics
from uniqcount.runtime.committer import FencedOut, TransactionsRefused
from uniqcount.runtime.config import Settings
from uniqcount.runtime.consumer_loop import PartitionsChanged
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.identity import NoSlot
from uniqcount.runtime.kafka_run import run_kafka
from uniqcount.runtime.outage import BrokerLost
from uniqcount.runtime.outputs import CountedOnly, DeadLetters, FileDeadLetters, OutputError, Records
from uniqcount.runtime.progress import error, status
from uniqcount.runtime.published import rolling_windows
from uniqcount.runtime.sources import Input, InputError, LineColumns
from uniqcount.runtime.state_log import StateMismatch

SETTINGS = [*config.CONNECTION, "TOPIC", "CONSUMER_GROUP", "OUTPUT_TOPIC", "DLQ_TOPIC", "ALLOWED_LATENESS",
            "LATE_RETENTION", "OUTLIER_JUMP", "GRANULARITIES", "EXACT_UP_TO", "HLL_LG_K", "SKETCH_RETENTION", "SKETCH_EXACT_FOR", "ROLLING", "METRICS_PORT",
            "EMIT_EARLY_EVERY", "IDLE_FLUSH_SECONDS", "STATUS_INTERVAL",
            "FETCH_MAX_BYTES", "MAX_PARTITION_FETCH_BYTES", "MAX_POLL_RECORDS",
            "PRODUCER_COMPRESSION", "PRODUCER_LINGER_MS", "PRODUCER_BATCH_BYTES", "BROKER_WAIT_SECONDS",
            "SESSION_TIMEOUT_MS", "CHECKPOINT_SECONDS", "INSTANCE_ID", "INPUT_KEYED_BY_UID"]


def run_input(args: argparse.Namespace, settings: Settings) -> int:
    source = Input(args.input)
    dead_letters: DeadLetters = FileDeadLetters(args.dlq) if args.dlq else CountedOnly()
    producer = sends = None
    if args.OUTPUT_TOPIC is not None:  # with --input, Kafka output only when asked for
        kafka_io.require_broker(settings)
        kafka_io.create_topics(settings, roles=["OUTPUT_TOPIC"])
        producer = kafka_io.producer(settings)
        sends = kafka_io.checked_sends(producer, settings, [settings.output_topic])
    counting = Counting(settings, Records(args.quiet, sends, settings.output_topic, rolling=rolling_windows(settings)),
                        dead_letters)
    status(f"consumer: reading {source.name}: no offsets and no checkpoints here; a run cut short is run again "
           f"from the start, and what it wrote before stays written; {frames.SCANNER}")
    for part in source.frames():
        if isinstance(part, LineColumns):
            counting.process_columns(part, 0)
        else:
            counting.process(part, part)
        if counting.meter.due():
            status(counting.status_line())
    counting.flush_all()
    source.close()
    dead_letters.close()
    if sends is not None:
        sends.settle(None)  # every record acknowledged, or SendFailed
        sends.producer.close()
    blank = f"; {source.blank_lines:,} blank lines skipped" if source.blank_lines else ""
    status(counting.summary() + blank)
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
    if settings.rolling and "minute" not in [g.name for g in settings.granularities]:
        return error("ROLLING needs minutes counted: add minute to GRANULARITIES, or empty ROLLING")
    collector.set_for_counting()
    try:
        if args.input:
            return run_input(args, settings)
        return run_kafka(args, settings, metrics.listen(settings.metrics_port) if settings.metrics_port else None)
    except BrokerLost as exc:
        return error(f"{exc}; nothing since the last checkpoint was committed, a restart goes on from there")
    except (InputError, OutputError, SendFailed, kafka_io.BrokerUnavailable, LibraryMismatch, StateMismatch, NoSlot,
            NotAllowed, FencedOut, TransactionsRefused, PartitionsChanged, metrics.MetricsPortTaken) as exc:
        return error(str(exc))
    except KafkaError as exc:  # what kafka-python gave up on, and no retry can mend
        return error(f"Kafka: {type(exc).__name__}: {exc}")
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
