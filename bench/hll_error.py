"""HyperLogLog error per granularity on a sample, against its truth file, as a Markdown table.

Every valid frame goes into one HllCounter per calendar window of each granularity; each window's
estimate is compared with the exact count of the truth file (made independently by a full JSON
parse). Reports the windows, worst and mean relative error, the theory (relative standard error of
lg_k), and how often the truth lies inside the sketch's own 95% bounds.

    python -m bench.hll_error ../shared/data/sample-week.jsonl.gz [--lg-k 14]
"""
from __future__ import annotations

import argparse
import statistics
import sys

from bench.truth import unique_users
from uniqcount.counters import DEFAULT_LG_K, HllCounter, hll_relative_standard_error
from uniqcount.frames import InvalidFrame, parse_frame
from uniqcount.granularities import GRANULARITIES
from uniqcount.sources import Input


def sketch_windows(path: str, lg_k: int) -> dict[tuple[str, int], HllCounter]:
    counters: dict[tuple[str, int], HllCounter] = {}
    for batch in Input(path).batches():
        for value in batch:
            try:
                uid, ts = parse_frame(value)
            except InvalidFrame:
                continue
            for name, granularity in GRANULARITIES.items():
                key = (name, granularity.start(ts))
                counter = counters.get(key)
                if counter is None:
                    counter = counters[key] = HllCounter(lg_k)
                counter.add(uid)
    return counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--lg-k", type=int, default=DEFAULT_LG_K)
    args = parser.parse_args(argv)
    truth = {key: users for key, users in unique_users(args.path).items() if key[0] in GRANULARITIES}
    counters = sketch_windows(args.path, args.lg_k)
    if set(counters) != set(truth):
        print(f"windows differ from the truth file: {len(set(counters) ^ set(truth))}", file=sys.stderr)
        return 1
    rse = hll_relative_standard_error(args.lg_k)
    print(f"lg_k {args.lg_k}: relative standard error {rse:.2%}, 3 RSE = {3 * rse:.2%}\n")
    print("| granularity | windows | users (smallest–largest) | worst error | mean error | worst / RSE "
          "| truth inside 95% bounds |")
    print("|---|---|---|---|---|---|---|")
    for name in GRANULARITIES:
        keys = [key for key in truth if key[0] == name]
        errors = [abs(counters[k].count() - truth[k]) / truth[k] for k in keys]
        bounds = [counters[k].bounds() for k in keys]
        inside = sum(low <= truth[k] <= high for k, (low, high) in zip(keys, bounds))
        users = [truth[k] for k in keys]
        print(f"| {name} | {len(keys):,} | {min(users):,}–{max(users):,} | {max(errors):.3%} "
              f"| {statistics.fmean(errors):.3%} | {max(errors) / rse:.2f} | {inside / len(keys):.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
