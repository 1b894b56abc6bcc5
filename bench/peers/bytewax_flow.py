"""The same job written the way Bytewax's documentation writes it: KafkaSource from the topic's start
to its end (tail=False), json.loads per frame, an event-time tumbling minute (EventClock, 5 s of
lateness) folding the uids into a set, one count per minute. Runs in the peers' virtualenv with
Bytewax's single-worker runner; prints one summary line like consumer.py's, and writes the minutes
as JSON lines to MINUTES_FILE: {"minute": start, "users": n}.

    BOOTSTRAP_SERVERS=... TOPIC=... MINUTES_FILE=... bench/cache/peers-venv/bin/python bench/peers/bytewax_flow.py
"""
from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.operators.windowing import EventClock, TumblingWindower, fold_window
from bytewax.testing import run_main
from peer_output import report

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def main() -> int:
    seen = {"frames": 0, "bytes": 0}
    minutes: list[tuple[int, int]] = []

    def frame(message):
        seen["frames"] += 1
        seen["bytes"] += len(message.value)
        parsed = json.loads(message.value)
        return parsed["uid"], float(parsed["ts"])

    def add(users: set, item: tuple) -> set:
        users.add(item[0])
        return users

    flow = Dataflow("unique_users_per_minute")
    source = KafkaSource(os.environ["BOOTSTRAP_SERVERS"].split(","), [os.environ["TOPIC"]], tail=False)
    frames = op.map("parse", op.input("kafka", flow, source), frame)
    keyed = op.key_on("one_key", frames, lambda _: "all")
    clock = EventClock(lambda item: datetime.fromtimestamp(item[1], timezone.utc),
                       wait_for_system_duration=timedelta(seconds=5))
    windows = fold_window("minutes", keyed, clock, TumblingWindower(timedelta(minutes=1), EPOCH),
                          set, add, set.union)
    op.inspect("collect", windows.down, lambda _step, item: minutes.append((item[1][0] * 60, len(item[1][1]))))
    started = time.monotonic()
    run_main(flow)
    seconds = time.monotonic() - started
    report("bytewax", minutes, seen["frames"], seen["bytes"], seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
