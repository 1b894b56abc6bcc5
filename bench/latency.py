"""How long after a minute's end (wall clock) its result appears, through the real broker.

Replays a sample at `--speed` times its event-time pace (producer.py --rate) while consumer.py runs
live, then reads both topics back. For each minute: when did the stream reach the minute's end (the
CreateTime of the first input frame at or past it), and when was the minute's first record written
(the output record's CreateTime). The difference is ALLOWED_LATENESS / speed plus the pipeline's own
delay (batching, polling, producing); the latter is what this reports separately. A reader with
read_committed, polling the output topic all along, notes when it first sees each minute: that is
what a downstream job sees, up to CHECKPOINT_SECONDS after the record was made (the checkpoint's
transaction commits it).

    python -m bench.latency ../shared/data/sample-late.jsonl.gz --speed 10
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid

from kafka import KafkaConsumer, TopicPartition

from uniqcount import REPO
from uniqcount.core.frames import InvalidFrame, parse_frame
from uniqcount.kafka_client.kafka_io import read_topic
from uniqcount.runtime.config import load


class Watcher(threading.Thread):
    """Tails a topic with read_committed and notes when (wall clock, ms) each window end first shows."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        self.reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                    isolation_level="read_committed", auto_offset_reset="earliest")
        self.reader.assign([TopicPartition(topic, 0)])
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for batch in self.reader.poll(timeout_ms=100).values():
                now = time.time() * 1000
                for message in batch:
                    self.seen.setdefault(json.loads(message.value)["window_end"], now)
        self.reader.close()


def main(argv: list[str] | None = None) -> int:
    settings = load()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--lateness", type=int, default=settings.allowed_lateness)
    args = parser.parse_args(argv)
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "TOPIC": f"lat-{run}", "OUTPUT_TOPIC": f"lat-out-{run}", "DLQ_TOPIC": f"lat-dlq-{run}",
           "CONSUMER_GROUP": f"lat-{run}", "ALLOWED_LATENESS": str(args.lateness), "STATUS_INTERVAL": "0",
           "GRANULARITIES": "minute"}
    subprocess.run([sys.executable, "-m", "uniqcount.devtools.brokerctl", "topics"], env={**env, "RESET_TOPICS": "false"},
                   cwd=REPO, check=True, capture_output=True)
    watcher = Watcher(settings.bootstrap_servers, env["OUTPUT_TOPIC"])
    watcher.start()
    consumer = subprocess.Popen([sys.executable, str(REPO / "consumer.py"), "--quiet"], env=env, cwd=REPO,
                                stderr=subprocess.PIPE)
    subprocess.run([sys.executable, str(REPO / "producer.py"), "--input", args.path, "--rate", str(args.speed)],
                   env=env, cwd=REPO, check=True, capture_output=True)
    consumer.send_signal(signal.SIGUSR1)
    consumer.wait(timeout=120)
    time.sleep(1)
    watcher.stop.set()
    watcher.join()

    reached: dict[int, float] = {}  # minute end -> when the stream first got there (ms)
    newest = None
    for message in read_topic(settings.bootstrap_servers, env["TOPIC"]):
        try:
            ts = parse_frame(message.value)[1]
        except InvalidFrame:
            continue
        newest = ts if newest is None else max(newest, ts)
        end = newest - newest % 60
        reached.setdefault(end, message.timestamp)
    first_record: dict[int, tuple[float, dict]] = {}
    for message in read_topic(settings.bootstrap_servers, env["OUTPUT_TOPIC"]):
        record = json.loads(message.value)
        first_record.setdefault(record["window_end"], (message.timestamp, record))
    closed = [end for end, (_, record) in first_record.items()
              if end in reached and record["late_frames"] == 0]  # the last minute closes at drain
    delays = [(first_record[end][0] - reached[end]) / 1000 for end in closed]
    visible = [(watcher.seen[end] - reached[end]) / 1000 for end in closed]
    expected = args.lateness / args.speed
    print(f"{len(delays)} minutes at {args.speed:g}x real time, lateness {args.lateness} s "
          f"({expected:.2f} s of wall clock at this speed):")
    print(f"  first record after the minute's end: median {statistics.median(delays):.2f} s, "
          f"max {max(delays):.2f} s wall clock")
    print(f"  pipeline's own delay beyond the lateness: median {statistics.median(delays) - expected:.3f} s, "
          f"max {max(delays) - expected:.3f} s")
    print(f"  seen by a read_committed reader after the minute's end: median {statistics.median(visible):.2f} s, "
          f"max {max(visible):.2f} s (checkpoint every {load().checkpoint_seconds} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
