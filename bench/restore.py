"""How long a restore takes: a partition's state of 1, 100 and 10,000 windows written to a state
topic on the configured broker, then read back (read_committed, as consumer.py does on an
assignment) and restored into a fresh counter.

Each window is a kept minute of `--users` users (exact, 8 bytes each), so the state is as large as
that many closed minutes waiting for late frames; minute granularity only, so the windows counted
are the ones written.

    python -m bench.restore [--users 100] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import time
import uuid

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from bench.measure import machine, write_result
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.state import Snapshots, restore
from uniqcount.core.userset import hashes_of
from uniqcount.kafka_client.state_topic import MAX_ENTRY_BYTES, StateReader
from uniqcount.runtime.config import load

MINUTE = 60


def counter() -> PartitionCounter:
    return PartitionCounter(0, 10 ** 9, 0, [GRANULARITIES["minute"]], "minute")


def state_of(windows: int, users: int) -> dict[str, bytes]:
    live = counter()
    for minute in range(windows + 1):  # the last one opens, so the others close
        live.add_many(list(hashes_of(f"u{minute}-{u}" for u in range(users))), [minute * MINUTE] * users, [None] * users)
    assert live.kept_windows == windows
    return Snapshots(live).full()


def measure(bootstrap: str, windows: int, users: int, repeat: int) -> dict:
    entries = state_of(windows, users)
    topic = f"bench-restore-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 1, -1, topic_configs={"max.message.bytes": str(MAX_ENTRY_BYTES)})])
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_request_size=MAX_ENTRY_BYTES)
        for key, value in entries.items():
            producer.send(topic, key=key.encode(), value=value, partition=0)
        producer.flush()
        producer.close()
        seconds = []
        for _ in range(repeat):
            start = time.perf_counter()
            reader = StateReader(bootstrap, topic)
            read = reader.read([0], 30_000)[0]
            restored = restore(counter(), read)
            Snapshots.restored(restored, read)
            seconds.append(time.perf_counter() - start)
            reader.close()
            assert restored.kept_windows == windows
    finally:
        admin.delete_topics([topic])
        admin.close()
    return {"windows": windows, "users_per_window": users, "entries": len(entries),
            "bytes": sum(map(len, entries.values())), "seconds_median": round(statistics.median(seconds), 3),
            "seconds": [round(s, 3) for s in seconds]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100, help="users in each window")
    parser.add_argument("--repeat", type=int, default=3, help="restores of each state (the median is reported)")
    args = parser.parse_args()
    bootstrap = load().bootstrap_servers
    results = [measure(bootstrap, windows, args.users, args.repeat) for windows in (1, 100, 10_000)]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
              "command": f"python -m bench.restore --users {args.users} --repeat {args.repeat}", "results": results}
    write_result("restore.json", report)
    print("| windows | entries | state | restore (median, new consumer included) |\n|---|---|---|---|")
    for r in results:
        print(f"| {r['windows']:,} | {r['entries']:,} | {r['bytes'] / 1e6:.2f} MB | {r['seconds_median']:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
