"""Every granularity end to end: consumer.py on a file, the latest record of each window against
exact counts (bench/truth.py), with the error of the HyperLogLog windows, the consumer's speed and its
peak RSS. Results as a Markdown table and as JSON in bench/results/.

    python -m bench.granularities ../shared/data/sample-week.jsonl.gz
    python -m bench.granularities --days 35   # generated once into data/: 1 frame/s, 50,000 users

Peak RSS is the consumer process's own (wait4's rusage of that child, started before the bench holds
the truth in memory), frames/s and MB/s its summary line.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Iterable

from bench.measure import generated_once, machine, measured, summary_line, write_result
from bench.truth import exact_unique_users
from uniqcount import REPO
from uniqcount.core.counters import hll_relative_standard_error
from uniqcount.core.granularities import GRANULARITIES


def generated(days: int) -> Path:
    """One frame per second for `days` days, 50,000 users, 256-byte frames (the traps kept)."""
    return generated_once(REPO / "data" / f"generated-{days}d.jsonl.gz",
                          ["-c", str(days * 86_400), "-r", "1", "-n", "50000", "-s", "256", "--seed", str(days),
                           "--start", "1704067200"])


def latest_records(lines: Iterable[bytes]) -> dict[tuple[str, int], dict]:
    """What a compacted output topic keeps: the last record per window."""
    latest = {}
    for line in lines:
        record = json.loads(line)
        latest[record["granularity"], record["window_start"]] = record
    return latest


def table(latest: dict[tuple[str, int], dict], truth: dict[tuple[str, int], int], lg_k: int) -> list[dict]:
    rows = []
    for name in GRANULARITIES:
        keys = sorted(key for key in truth if key[0] == name)
        if not keys:
            continue
        missing = [key for key in keys if key not in latest]
        if missing or any(key[0] == name and key not in truth for key in latest):
            raise SystemExit(f"{name}: the windows differ from the truth's, e.g. {missing[:3]}")
        records = [latest[key] for key in keys]
        errors = [abs(r["unique_users"] - truth[k]) / truth[k] for k, r in zip(keys, records)]
        hll = [(k, r) for k, r in zip(keys, records) if r["estimate"] == "hll"]
        inside = sum(r["lower_bound"] <= truth[k] <= r["upper_bound"] for k, r in hll)
        rows.append({"granularity": name, "estimate": records[0]["estimate"], "windows": len(keys),
                     "users_min": min(truth[k] for k in keys), "users_max": max(truth[k] for k in keys),
                     "exact_windows": sum(e == 0 for e in errors), "worst_error": max(errors),
                     "mean_error": statistics.fmean(errors),
                     "worst_over_rse": max(errors) / hll_relative_standard_error(lg_k),
                     "inside_bounds": inside / len(hll) if hll else None,
                     "all_final": all(r["final"] for r in records)})
    return rows


def markdown(rows: list[dict], lg_k: int) -> str:
    rse = hll_relative_standard_error(lg_k)
    lines = [f"lg_k {lg_k}: relative standard error (RSE) {rse:.2%}, 3 RSE = {3 * rse:.2%}", "",
             "| granularity | estimate | windows | users (smallest–largest) | exact windows | worst error "
             "| mean error | worst / RSE | truth inside 95% bounds |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        inside = f"{r['inside_bounds']:.1%}" if r["inside_bounds"] is not None else "–"
        lines.append(f"| {r['granularity']} | {r['estimate']} | {r['windows']:,} | {r['users_min']:,}–"
                     f"{r['users_max']:,} | {r['exact_windows']:,} | {r['worst_error']:.3%} | {r['mean_error']:.3%} "
                     f"| {r['worst_over_rse']:.2f} | {inside} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="a JSON Lines file (gzip); truth beside it or computed")
    parser.add_argument("--days", type=int, help="generate this many days instead (cached in data/)")
    parser.add_argument("--lg-k", type=int, default=14)
    parser.add_argument("--exact-up-to", default="hour", help="minute: measure hours with HyperLogLog too")
    args = parser.parse_args(argv)
    if (args.path is None) == (args.days is None):
        parser.error("give a path or --days")
    path = Path(args.path) if args.path else generated(args.days)
    # the consumer first: a child forked from a process that holds the truth would count its pages
    stdout, stderr, seconds, peak = measured([sys.executable, str(REPO / "consumer.py"), "--input", str(path),
                                              "--hll-lg-k", str(args.lg_k), "--exact-up-to", args.exact_up_to,
                                              "--status-interval", "0"])
    latest, summary = latest_records(stdout.splitlines()), summary_line(stderr)
    truth = exact_unique_users(path)
    rows = table(latest, truth, args.lg_k)
    print(markdown(rows, args.lg_k))
    print(f"\n{summary}\nwall clock {seconds:.1f} s, peak RSS {peak / 1e6:.0f} MB")
    out = write_result(f"granularities-{path.name.split('.')[0]}-exact-{args.exact_up_to}-lgk{args.lg_k}.json",
                       {"input": str(path), "lg_k": args.lg_k, "exact_up_to": args.exact_up_to, "rows": rows,
                        "summary": summary, "seconds": round(seconds, 2), "peak_rss_bytes": peak,
                        "machine": machine()})
    print(f"written: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
