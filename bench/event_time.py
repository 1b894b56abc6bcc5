"""The latency/accuracy trade-off of ALLOWED_LATENESS on a sample, as a Markdown table.

For each lateness: how many frames came after their minute was emitted (late), how many correction
records that took, how far the first (revision 0) records were from the exact answer, and the
whether the latest record per minute equals the sample's truth file. A minute's first record comes
`ALLOWED_LATENESS` seconds of event time after its end, by construction. Runs the pure core on the file, so the
numbers do not depend on Kafka batching (corrections do: one per minute and batch of 10,000 frames).

    python -m bench.event_time ../shared/data/sample-late.jsonl.gz
"""
from __future__ import annotations

import argparse
import sys

from bench.truth import unique_users
from uniqcount.core.granularities import parse_granularities
from uniqcount.core.windowset import Result
from uniqcount.runtime.config import load
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outputs import CountedOnly, Records
from uniqcount.runtime.sources import Input


class Collect(Records):
    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.results: list[Result] = []

    def write(self, results: list[Result]) -> None:
        self.results += results


def run(path: str, lateness: int, retention: int) -> tuple[Counting, list[Result]]:
    settings = {**load(), "ALLOWED_LATENESS": lateness, "LATE_RETENTION": retention, "STATUS_INTERVAL": 0,
                "EMIT_EARLY_EVERY": 0, "GRANULARITIES": parse_granularities("minute")}
    out = Collect()
    counting = Counting(settings, out, CountedOnly())
    for batch in Input(path).batches():
        counting.process(batch, batch)
    counting.flush_all()
    return counting, out.results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--lateness", default="0,1,2,5,10,15")
    args = parser.parse_args(argv)
    truth = {start: users for (granularity, start), users in unique_users(args.path).items()
             if granularity == "minute"}
    print("| `ALLOWED_LATENESS` | late frames | corrections | minutes exact at revision 0 "
          "| worst revision-0 shortfall (users) | latest records = truth |")
    print("|---|---|---|---|---|---|")
    for lateness in map(int, args.lateness.split(",")):
        counting, results = run(args.path, lateness, 3600)
        first = {r.start: r for r in reversed(results)}
        last = {r.start: r for r in results}
        short = [last[s].users - first[s].users for s in last]
        full = [s for s in last if s != max(last)]  # the last minute is closed by the end of input
        exact_first = sum(1 for s in full if first[s].users == last[s].users)
        exact = {s: r.users for s, r in last.items()} == truth
        print(f"| {lateness} s | {counting.partitions.total('late_frames'):,} | {counting.partitions.total('corrections')} "
              f"| {exact_first} of {len(full)} | {max(short)} | {'yes' if exact else 'NO'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
