"""The common published approach, as the yardstick: kafka-python, `json.loads` per frame, one `set`
per minute, a minute emitted when a frame of a later minute arrives. Reads TOPIC from the start in a
fresh group until the end offsets seen at start, writes counts to OUTPUT_TOPIC, prints one summary
line like consumer.py's.

    python -m bench.baseline     (TOPIC, OUTPUT_TOPIC, BOOTSTRAP_SERVERS from the settings)
"""
from __future__ import annotations

import json
import sys
import time
import uuid

from kafka import KafkaConsumer, KafkaProducer

from uniqcount.kafka_client.kafka_io import rejoins_until_joined
from uniqcount.runtime.config import load


def main() -> int:
    settings = load()
    consumer = KafkaConsumer(settings.topic, bootstrap_servers=settings.bootstrap_servers,
                             group_id=f"baseline-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest",
                             enable_auto_commit=False)
    rejoins_until_joined(consumer)  # the library's rebalance bug, not a speed-up: see kafka_io
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    started, frames, size = time.monotonic(), 0, 0
    minute, users = None, set()
    ends = None
    while True:
        for records in consumer.poll(timeout_ms=500).values():
            for message in records:
                frame = json.loads(message.value)
                current = int(frame["ts"]) // 60
                if minute is not None and current > minute:
                    producer.send(settings.output_topic, json.dumps({"minute": minute * 60,
                                                                        "users": len(users)}).encode())
                    users = set()
                minute = current if minute is None else max(minute, current)
                users.add(frame["uid"])
                frames += 1
                size += len(message.value)
        if ends is None and consumer.assignment():
            ends = consumer.end_offsets(list(consumer.assignment()))
        if ends and all(consumer.position(tp) >= end for tp, end in ends.items()):
            break
    producer.send(settings.output_topic, json.dumps({"minute": minute * 60, "users": len(users)}).encode())
    producer.flush()
    seconds = time.monotonic() - started
    print(f"baseline: done: {frames:,} frames, {size / 1e6:,.1f} MB in {seconds:.1f} s: "
          f"{frames / seconds:,.0f} frames/s, {size / 1e6 / seconds:,.1f} MB/s", file=sys.stderr)
    consumer.close()
    producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
