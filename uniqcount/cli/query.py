"""`./run.sh query FROM TO`: the unique users of [FROM, TO), from the windows consumer.py stored in
`<OUTPUT_TOPIC>-sketches` (docs/QUERIES.md). One JSON record on stdout: unique_users, estimate
(exact or hll, with lower_bound / upper_bound), the windows united, and complete: false with the
spans missing when part of the range is not final yet or past retention.

FROM and TO: epoch seconds, or ISO 8601 times in UTC (2016-07-11T13:39:00Z, 2016-07-11 13:39,
2016-07-11).

    ./run.sh query 2016-07-11T09:30 2016-07-11T17:00
"""
from __future__ import annotations

import json
import sys
import time

from uniqcount.core.ranges import StoredIndex, answer, instant
from uniqcount.kafka_client import kafka_io
from uniqcount.kafka_client.kafka_io import sketches_topic
from uniqcount.kafka_client.state_topic import StateReader
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.progress import error, status

READ_TIMEOUT_MS = 60_000


def stored_index(settings: Settings) -> StoredIndex:
    """The sketches topic's latest records (read_committed), read from its start."""
    topic = sketches_topic(settings.output_topic)
    kafka_io.require_broker(settings)
    reader = StateReader(settings, topic)
    try:
        if not reader.partitions(timeout_ms=2000):
            raise LookupError(f"nothing stored: {topic} does not exist (consumer.py stores the windows it "
                              f"publishes there unless SKETCH_RETENTION is empty)")
        started = time.monotonic()
        entries = reader.read([0], READ_TIMEOUT_MS)[0]
    finally:
        reader.close()
    index = StoredIndex()
    for key, value in entries.items():
        index.add(key, value)
    if not len(index):
        raise LookupError(f"nothing stored in {topic} yet: no window is final")
    size = sum(map(len, entries.values()))
    status(f"query: {len(index):,} windows ({size / 1e6:.1f} MB) read from {topic} in "
           f"{time.monotonic() - started:.1f} s")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = config.OneLineParser(prog="./run.sh query", description=__doc__)
    parser.add_argument("start", metavar="FROM", help="start of the range (included)")
    parser.add_argument("end", metavar="TO", help="end of the range (excluded)")
    config.add_flags(parser, [*config.CONNECTION, "OUTPUT_TOPIC"])
    args = parser.parse_args(argv)
    settings = config.from_args(args)
    try:
        start, end = instant(args.start), instant(args.end)
    except ValueError as exc:
        return error(str(exc))
    if start >= end:
        return error(f"FROM must be before TO: {args.start} is not before {args.end}")
    try:
        index = stored_index(settings)
    except (kafka_io.BrokerUnavailable, LookupError) as exc:
        return error(str(exc))
    print(json.dumps(answer(index, start, end)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
