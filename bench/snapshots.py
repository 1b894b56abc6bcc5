"""What the state as a value costs: snapshot sizes and times of one partition's counter.

Runs the pure core on a sample file with the configured settings (six granularities, exact up to the
hour), takes an incremental snapshot (core/state.py) every `--every` seconds of event time, as a
checkpoint would, and reports the bytes each wrote, the time each took against the time spent
counting, the full snapshot at the end of the input, and the time to restore it into a fresh counter.

    python -m bench.snapshots data/stream.jsonl.gz
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.measure import machine, write_result
from uniqcount.core.frames import parse_batch
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.state import Snapshots, restore
from uniqcount.runtime.config import Settings, load
from uniqcount.runtime.sources import Input


def counter(settings: Settings) -> PartitionCounter:
    return PartitionCounter(settings.allowed_lateness, settings.late_retention, settings.outlier_jump,
                            settings.granularities, settings.exact_up_to, settings.hll_lg_k)


def measure(path: str, every: int) -> dict:
    settings = load()
    live = counter(settings)
    snapshots = Snapshots(live)
    counting = taking = 0.0
    taken, frames, next_at = [], 0, None
    for batch in Input(path).batches():
        start = time.perf_counter()
        users, stamps, _ = parse_batch(batch)
        live.add_many(users, stamps, batch)
        counting += time.perf_counter() - start
        frames += len(batch)
        if live.watermark is None:
            continue
        next_at = live.watermark + every if next_at is None else next_at
        if live.watermark >= next_at:
            next_at += every
            start = time.perf_counter()
            changes = snapshots.take()
            seconds = time.perf_counter() - start
            taking += seconds
            taken.append({"bytes": sum(map(len, changes.changed.values())), "entries": len(changes.changed),
                          "dropped": len(changes.dropped), "ms": seconds * 1000})
    start = time.perf_counter()
    full = Snapshots(live).full()
    full_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    restore(counter(settings), full)
    restore_ms = (time.perf_counter() - start) * 1000
    sizes = [t["bytes"] for t in taken]
    times = [t["ms"] for t in taken]
    return {"path": path, "frames": frames, "every_seconds": every, "snapshots": len(taken),
            "granularities": [g.name for g in settings.granularities], "exact_up_to": settings.exact_up_to,
            "incremental_bytes_median": statistics.median(sizes), "incremental_bytes_max": max(sizes),
            "incremental_entries_median": statistics.median(t["entries"] for t in taken),
            "incremental_ms_median": round(statistics.median(times), 2), "incremental_ms_max": round(max(times), 2),
            "snapshot_share_of_counting": round(taking / counting, 4), "counting_seconds": round(counting, 2),
            "full_entries": len(full), "full_bytes": sum(map(len, full.values())), "full_ms": round(full_ms, 1),
            "restore_ms": round(restore_ms, 1), "machine": machine()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--every", type=int, default=5, help="seconds of event time between snapshots")
    args = parser.parse_args(argv)
    result = measure(args.path, args.every)
    write_result("snapshots.json", result)
    for key, value in result.items():
        if key != "machine":
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
