"""Two years of history through the real broker: producer.py loads a sparse stream, consumer.py
--exit-at-end counts every granularity, and the output topic is checked against exact counts.

    python -m bench.history            # 730 days, a frame every 20 s: 3,153,600 frames (cached in data/)

The stream starts 2023-06-01 00:00 UTC, so it crosses a year change on a Monday (2024-01-01), the
leap day 2024-02-29, and a year change inside an ISO week (2025-W01 starts Monday 2024-12-30).
Windows close in event time, never with the wall clock. Reports the time each script took, the
consumer's peak RSS, the calendar windows at those boundaries, and the error per granularity.
"""
from __future__ import annotations

import argparse
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.granularities import latest_records, markdown, table
from bench.measure import generated_once, measured, summary_line, write_result
from bench.truth import by_full_parse
from uniqcount import REPO
from uniqcount.core.counters import DEFAULT_LG_K
from uniqcount.kafka_client.kafka_io import read_topic
from uniqcount.runtime.config import load

START = 1685577600  # 2023-06-01 00:00 UTC


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


# (granularity, start) -> end: the windows at the boundaries this history crosses
BOUNDARIES = {
    ("year", utc(2023, 1, 1)): utc(2024, 1, 1),
    ("year", utc(2024, 1, 1)): utc(2025, 1, 1),
    ("month", utc(2024, 2, 1)): utc(2024, 3, 1),  # a leap February: 29 days
    ("day", utc(2024, 2, 29)): utc(2024, 3, 1),
    ("week", utc(2023, 12, 25)): utc(2024, 1, 1),
    ("week", utc(2024, 12, 30)): utc(2025, 1, 6),  # ISO 2025-W01, across the year change
    ("month", utc(2024, 12, 1)): utc(2025, 1, 1),
}


def history(days: int, every: int) -> Path:
    return generated_once(REPO / "data" / f"history-{days}d-every{every}s.jsonl.gz",
                          ["-c", str(days * 86_400 // every), "-r", "1", "-i", str(every), "-n", "50000", "-s",
                           "256", "--seed", "730", "--start", str(START)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--every", type=int, default=20, help="seconds of event time between frames")
    args = parser.parse_args(argv)
    path = history(args.days, args.every)
    bootstrap = load().bootstrap_servers
    run = uuid.uuid4().hex[:8]
    env = {"TOPIC": f"history-{run}", "OUTPUT_TOPIC": f"history-out-{run}", "DLQ_TOPIC": f"history-dlq-{run}",
           "CONSUMER_GROUP": f"history-{run}", "STATUS_INTERVAL": "0"}
    _, produced, produce_s, _ = measured([sys.executable, str(REPO / "producer.py"), "--input", str(path)], env)
    _, consumed, consume_s, peak = measured([sys.executable, str(REPO / "consumer.py"), "--exit-at-end", "--quiet"],
                                            env)
    messages = read_topic(bootstrap, env["OUTPUT_TOPIC"], timeout=600)
    dead = read_topic(bootstrap, env["DLQ_TOPIC"])
    latest = latest_records(m.value for m in messages)
    truth = by_full_parse(path)
    rows = table(latest, truth, DEFAULT_LG_K)
    boundaries = {f"{g} {datetime.fromtimestamp(s, timezone.utc):%Y-%m-%d}": latest.get((g, s), {}).get("window_end") == end
                  for (g, s), end in BOUNDARIES.items()}
    print(markdown(rows, DEFAULT_LG_K))
    print(f"\n{summary_line(produced)}\nproducer.py: {produce_s:.1f} s wall clock")
    print(f"{summary_line(consumed)}\nconsumer.py --exit-at-end: {consume_s:.1f} s wall clock, peak RSS "
          f"{peak / 1e6:.0f} MB; {len(messages):,} records on the output topic, {len(dead)} dead letters")
    print("boundary windows with the right end: " + ", ".join(f"{k} {'yes' if ok else 'NO'}" for k, ok in boundaries.items()))
    out = write_result(f"history-{args.days}d-every{args.every}s.json",
                       {"input": str(path), "rows": rows, "producer": summary_line(produced),
                        "producer_seconds": round(produce_s, 1), "consumer": summary_line(consumed),
                        "consumer_seconds": round(consume_s, 1), "consumer_peak_rss_bytes": peak,
                        "output_records": len(messages), "dead_letters": len(dead), "boundaries": boundaries})
    print(f"written: {out.relative_to(REPO)}")
    return 0 if all(boundaries.values()) and not dead else 1


if __name__ == "__main__":
    sys.exit(main())
