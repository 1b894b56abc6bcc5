"""Range queries from stored windows (docs/QUERIES.md): what the windows cost to store, and how long
a range takes to answer, from a minute to two years.

1. Sizes: the canonical sample counted in-process (minutes, hours, days, with EXACT_UP_TO, HLL_LG_K,
   SKETCH_RETENTION and SKETCH_EXACT_FOR as configured) and its final windows stored as consumer.py
   stores them; bytes per window by granularity and kind (exact hashes, HLL sketch). A year at the
   sample's rate follows from them: what the compacted topic holds, and what is written.
2. Latency: an index of two years of stored windows, as the retention leaves them, each window one
   of the sample's own stored windows of its granularity (a union's cost depends on the sketches'
   and hash sets' sizes, not on whose users they hold), then `--ranges` random minute-aligned ranges
   per case answered by core/ranges.answer on that index held in memory (as a server keeps it; a
   sketch is decoded on first use). Short ranges lie in the last day (exact hashes kept) or the
   last week (minutes kept); a week and longer anywhere in the two years.

    python -m bench.query [--ranges 200]

Writes bench/results/query.json and the `query` section of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from itertools import cycle
from typing import Any

from bench.measure import machine, markdown_table, write_result, write_section
from uniqcount import REPO
from uniqcount.core.frames import parse_batch
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.core.partition import PartitionCounter
from uniqcount.core.ranges import StoredIndex, answer
from uniqcount.core.sketches import EXACT, SIZES, Keeping, StoredWindows, small_bytes, window_records
from uniqcount.core.windowset import Result
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime.config import Settings, load
from uniqcount.runtime.sources import Input

PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"
DAY = 86_400
YEAR = 365 * DAY
HISTORY = 2 * YEAR
RECENT = 7 * DAY
# (what, seconds, the span of event time before the newest window that holds the range)
CASES = [("a minute, in the last day", 60, DAY), ("an hour, in the last day", 3600, DAY),
         ("7.5 h (09:30-17:00), in the last day", 27_000, DAY), ("a minute, in the last week", 60, RECENT),
         ("an hour, in the last week", 3600, RECENT), ("7.5 h, in the last week", 27_000, RECENT),
         ("a day, in the last week", DAY, RECENT), ("a week", 7 * DAY, HISTORY), ("30 days", 30 * DAY, HISTORY),
         ("92 days", 92 * DAY, HISTORY), ("a year", YEAR, HISTORY), ("two years", HISTORY, HISTORY)]


def keeping(settings: Settings) -> Keeping:
    return Keeping(settings.sketch_retention, settings.sketch_exact_for, settings.hll_lg_k, small_bytes(settings.hll_lg_k))


def sample_records(settings: Settings) -> tuple[list[tuple[bytes, bytes | None]], dict[str, Any]]:
    """The canonical sample's stored records, and what it was (frames, seconds of event time)."""
    counter = PartitionCounter(settings.allowed_lateness, settings.late_retention, settings.outlier_jump,
                               [GRANULARITIES[g] for g in SIZES], settings.exact_up_to, settings.hll_lg_k)
    stored = StoredWindows(keeping(settings))
    source = Input(str(ensure_sample(settings)))
    frames, first, last = 0, None, None
    try:
        for lines in source.batches():
            users, stamps, _ = parse_batch(lines)
            frames += len(stamps)
            first = min([*stamps, *([first] if first is not None else [])])
            last = max([*stamps, *([last] if last is not None else [])])
            stored.add(counter.add_many(users, stamps, lines).results)
    finally:
        source.close()
    stored.add(counter.flush().results)
    return stored.take(), {"frames": frames, "event_seconds": (last or 0) - (first or 0) + 1}


def sizes(records: list[tuple[bytes, bytes | None]]) -> dict[str, dict[str, Any]]:
    """Bytes (key and value) per window, by granularity and kind, over the sample's windows."""
    by: dict[tuple[str, str, int], int] = defaultdict(int)
    for key, value in records:
        granularity, start, kind, *_ = key.decode().split(":")
        by[(granularity, kind, int(start))] += len(key) + len(value or b"")
    out: dict[str, dict[str, Any]] = {}
    for granularity in SIZES:
        for kind in ("hll", EXACT):
            each = [n for (g, k, _), n in by.items() if g == granularity and k == kind]
            if each:
                out.setdefault(granularity, {})[kind] = {"windows": len(each), "median_bytes": int(statistics.median(each)),
                                                         "max_bytes": max(each)}
    return out


def a_year(per_window: dict[str, dict[str, Any]], keep: Keeping) -> dict[str, int]:
    """Bytes a year of the sample's rate costs: written (each window once, when final; corrections
    add theirs), and held by the compacted topic once retention has run for a year."""
    written = held = 0
    for granularity, size in SIZES.items():
        kinds = per_window.get(granularity, {})
        hll, exact = (kinds.get(k, {}).get("median_bytes", 0) for k in ("hll", EXACT))
        windows = YEAR // size
        written += windows * (hll + exact)
        held += min(windows, keep.retention.get(granularity, 0) // size) * hll
        held += min(windows, keep.exact_for // size) * exact
    return {"written_bytes": written, "held_bytes": held}


def two_years(records: list[tuple[bytes, bytes | None]], keep: Keeping, end: int) -> StoredIndex:
    """An index of the windows two years ending at `end` leave stored: each granularity's windows
    within its retention, with exact parts within the exact horizon, each made of one of the
    sample's windows of that granularity in turn."""
    sample = StoredIndex()
    for key, value in records:
        sample.add(key, value)
    index = StoredIndex()
    for granularity, size in SIZES.items():
        if granularity not in keep.retention or not sample.windows[granularity]:
            continue
        models = cycle(sample.windows[granularity].values())
        keep_from = end - min(keep.retention[granularity], HISTORY)  # windows ending after it are kept
        for start in range(keep_from // size * size, end // size * size, size):
            model = next(models)
            parts = [model.exact[n][1] for n in range(model.exact_parts)] \
                if model.has_hashes and start + size > end - keep.exact_for else []
            result = Result(granularity, start, start + size, model.users, model.frames, True, model.revision, 0)
            assert model.sketch is not None
            for key, value in window_records(result, model.users, model.sketch, parts):
                index.add(key, value)
    return index


def latencies(index: StoredIndex, end: int, ranges: int, lg_k: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for name, length, span in CASES:
        seconds, windows, exact, complete = [], [], 0, 0
        for _ in range(ranges):
            stop = end - rng.randrange(0, span - length + 1) // 60 * 60
            began = time.perf_counter()
            got = answer(index, stop - length, stop, lg_k)
            seconds.append(time.perf_counter() - began)
            windows.append(len(got["windows"]))
            exact += got["estimate"] == "exact"
            complete += got["complete"]
        seconds.sort()
        rows.append({"length": name, "seconds": length, "ranges": ranges,
                     "p50_ms": round(1000 * statistics.median(seconds), 2),
                     "p99_ms": round(1000 * seconds[max(0, round(0.99 * len(seconds)) - 1)], 2),
                     "max_ms": round(1000 * seconds[-1], 2), "median_windows": int(statistics.median(windows)),
                     "exact_share": round(exact / ranges, 2), "complete_share": round(complete / ranges, 2)})
        print(f"bench.query: {name}: p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms", file=sys.stderr)
    return rows


def report(result: dict[str, Any]) -> str:
    size_rows = [[g, k, f"{v['windows']}", f"{v['median_bytes']:,}", f"{v['max_bytes']:,}"]
                 for g, kinds in result["sizes"].items() for k, v in kinds.items()]
    year = result["a_year"]
    latency_rows = [[r["length"], f"{r['p50_ms']}", f"{r['p99_ms']}", f"{r['max_ms']}", f"{r['median_windows']}",
                     f"{r['exact_share']:.0%}", f"{r['complete_share']:.0%}"] for r in result["latency"]]
    sample = result["sample"]
    return "\n".join([
        f"Measured {result['machine']['date']} on {result['machine']['cores']} cores; `python -m bench.query "
        f"--ranges {result['ranges']}`; settings `SKETCH_RETENTION={result['settings']['retention']}`, "
        f"`SKETCH_EXACT_FOR={result['settings']['exact_for']}`, `EXACT_UP_TO={result['settings']['exact_up_to']}`, "
        f"`HLL_LG_K={result['settings']['lg_k']}`.", "",
        f"Bytes per stored window (key and value), the canonical sample ({sample['frames']:,} frames over "
        f"{sample['event_seconds']:,} s of event time):", "",
        markdown_table(["granularity", "kind", "windows", "median bytes", "max bytes"], size_rows, "---:"), "",
        f"A year at the sample's rate: **{year['written_bytes'] / 1e9:,.1f} GB written** to the sketches topic "
        f"(every window once, when final), **{year['held_bytes'] / 1e6:,.0f} MB held** by it once compacted under "
        f"the retention above.", "",
        f"Latency of `answer()` on an index of two years of stored windows ({result['index_windows']:,} windows, "
        f"built in {result['index_seconds']} s), {result['ranges']} random minute-aligned ranges per case:", "",
        markdown_table(["range", "p50 ms", "p99 ms", "max ms", "windows (median)", "exact", "complete"],
                       latency_rows, "---:"),
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranges", type=int, default=200, help="random ranges per case")
    args = parser.parse_args(argv)
    settings = load()
    keep = keeping(settings)
    print("bench.query: counting the canonical sample ...", file=sys.stderr)
    records, sample = sample_records(settings)
    per_window = sizes(records)
    end = (2_000_000_000 // DAY) * DAY + 13 * 3600 + 17 * 60  # a newest window ending mid-day
    began = time.perf_counter()
    index = two_years(records, keep, end)
    built = round(time.perf_counter() - began, 1)
    result = {"machine": machine(), "ranges": args.ranges, "sample": sample, "sizes": per_window,
              "a_year": a_year(per_window, keep),
              "settings": {"retention": ",".join(f"{g}:{s // DAY}d" for g, s in keep.retention.items()),
                           "exact_for": f"{keep.exact_for // 3600}h", "exact_up_to": settings.exact_up_to,
                           "lg_k": settings.hll_lg_k},
              "index_windows": len(index), "index_seconds": built,
              "latency": latencies(index, end, args.ranges, settings.hll_lg_k)}
    write_result("query.json", result)
    write_section(PERFORMANCE, "query", report(result), "Performance")
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
