"""Throughput with 1, 2 and 4 consumer processes of one group, and what partial results cost.

The canonical sample is loaded once into a topic of 1 partition and once into one of 4 (`--key uid`
for the keyed run); each run starts N consumer.py processes (`--exit-at-end`, a group and output
topics of their own) at once and takes the wall time from their start to the last one's exit, so
the group's joins, rebalances, restores and the merger's last hop are in it. Frames/s is the
sample's frames over that time. The partials' bytes are every record of `<output>-partials`
(read_uncommitted: what was written, before compaction).

    python -m bench.scale [--consumers 1,2,4] [--repeat 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from bench.measure import delete_run_topics, machine, write_result, write_section
from uniqcount import REPO
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime.config import load

PYTHON = str(REPO / ".venv" / "bin" / "python")
PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"
SESSION = uuid.uuid4().hex[:8]  # in every topic and group name of one call: deleted at its end


def loaded(bootstrap: str, sample: str, partitions: int, keyed: bool) -> str:
    topic = f"bench-scale-{SESSION}-in-{uuid.uuid4().hex[:6]}"
    KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic(topic, partitions, -1)])
    subprocess.run([PYTHON, "producer.py", "--input", sample, *(["--key", "uid"] if keyed else [])], cwd=REPO,
                   env={**os.environ, "TOPIC": topic}, check=True, stderr=subprocess.DEVNULL)
    return topic


def written_bytes(bootstrap: str, topic: str) -> tuple[int, int]:
    """(records, bytes of keys and values) ever written to a topic of one partition."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_uncommitted")
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        reader.seek_to_beginning()
        end = reader.end_offsets([tp])[tp]
        count = size = 0
        while reader.position(tp) < end:
            for records in reader.poll(timeout_ms=500).values():
                count += len(records)
                size += sum(len(r.key or b"") + len(r.value or b"") for r in records)
        return count, size
    finally:
        reader.close()


def run(bootstrap: str, topic: str, partitions: int, consumers: int, keyed: bool, frames: int) -> dict:
    run_id = f"{SESSION}-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "TOPIC": topic, "OUTPUT_TOPIC": f"bench-out-{run_id}", "DLQ_TOPIC": f"bench-dlq-{run_id}",
           "CONSUMER_GROUP": f"bench-scale-{run_id}", "INPUT_KEYED_BY_UID": "true" if keyed else "false"}
    started = time.monotonic()
    processes = [subprocess.Popen([PYTHON, "consumer.py", "--exit-at-end", "--quiet"], cwd=REPO,
                                  env={**env, "INSTANCE_ID": f"c{n}"}, stderr=subprocess.PIPE)
                 for n in range(consumers)]
    summaries = []
    for process in processes:
        _, err = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"a consumer failed:\n{err.decode()[-3000:]}")
        summaries.append(err.decode().strip().splitlines()[-1])
    seconds = time.monotonic() - started
    partials = written_bytes(bootstrap, env["OUTPUT_TOPIC"] + "-partials") if partitions > 1 else (0, 0)
    return {"partitions": partitions, "consumers": consumers, "keyed": keyed, "seconds": round(seconds, 1),
            "frames_per_s": round(frames / seconds), "partials_records": partials[0], "partials_bytes": partials[1],
            "summaries": summaries}


def table(results: list[dict], measured: str, repeat: int) -> str:
    """Medians per setup, every run listed, and the ratio to one consumer of a one-partition topic."""
    setups: dict[tuple[int, int, bool], list[dict]] = {}
    for r in results:
        setups.setdefault((r["partitions"], r["consumers"], r["keyed"]), []).append(r)
    base = statistics.median(r["frames_per_s"] for r in setups[(1, 1, False)])
    cores = machine()["cores"]
    lines = [f"Measured {measured} with `python -m bench.scale --repeat {repeat}` on {cores} cores, the broker on "
             "the same machine; wall time from the consumers' start to the last one's exit.", "",
             "| partitions | consumers | input | frames/s (median) | all runs | vs 1 partition, 1 consumer | partials written |",
             "|---|---|---|---|---|---|---|"]
    for (partitions, consumers, keyed), runs in setups.items():
        median = statistics.median(r["frames_per_s"] for r in runs)
        every = ", ".join(f"{r['frames_per_s'] / 1000:.0f}k" for r in runs)
        partials = f"{runs[0]['partials_bytes'] / 1e6:.2f} MB" if partitions > 1 else "none (no partials topic)"
        lines.append(f"| {partitions} | {consumers} | {'keyed by uid' if keyed else 'not keyed'} | {median:,.0f} | "
                     f"{every} | {median / base:.2f}x | {partials} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--consumers", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    settings = load()
    bootstrap = settings.bootstrap_servers
    sample = str(ensure_sample(settings))
    frames = 1_000_000
    results = []
    try:
        topics = {(1, False): loaded(bootstrap, sample, 1, False), (4, False): loaded(bootstrap, sample, 4, False),
                  (4, True): loaded(bootstrap, sample, 4, True)}
        for attempt in range(args.repeat):
            results.append(run(bootstrap, topics[(1, False)], 1, 1, False, frames))
            for count in map(int, args.consumers.split(",")):
                for keyed in (False, True):
                    print(f"bench.scale: {count} consumer(s), 4 partitions, keyed {keyed} ({attempt + 1})",
                          file=sys.stderr)
                    results.append(run(bootstrap, topics[(4, keyed)], 4, count, keyed, frames))
                    print(f"  {results[-1]['frames_per_s']:,} frames/s in {results[-1]['seconds']} s; partials "
                          f"{results[-1]['partials_bytes'] / 1e6:.2f} MB", file=sys.stderr)
    finally:
        delete_run_topics(bootstrap, SESSION)
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    path = write_result("scale.json", {"machine": machine(), "measured": measured, "results": results})
    write_section(PERFORMANCE, "scale", table(results, measured, args.repeat), "Performance")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
