"""The latency/accuracy trade-off of ALLOWED_LATENESS on a sample: a Markdown table and a picture.

For each lateness: how many frames came after their minute was emitted (late), how many correction
records that took, how far the first (revision 0) records were from the exact answer, whether the
latest record per minute equals the sample's truth file, and how long after a minute's end its
first record came, in event time: the stream's largest timestamp when the record was emitted,
minus the minute's end. It runs the pure core on the file one frame per batch, as a live stream
polled frame by frame, so the numbers do not depend on batching. (Larger batches merge the
corrections of one minute and wait for the batch's last frame.)

    python -m bench.event_time ../shared/data/sample-late.jsonl.gz   # + docs/pictures/event-time.png
"""
from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.measure import markdown_table
from bench.truth import unique_users
from uniqcount import REPO
from uniqcount.core.granularities import parse_granularities
from uniqcount.core.windowset import Result
from uniqcount.runtime.config import load
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outputs import CountedOnly, Records
from uniqcount.runtime.sources import Input

PICTURE = REPO / "docs" / "pictures" / "event-time.png"
WIDTH, HEIGHT, DPI = 10.0, 4.5, 100


class Collect(Records):
    """Keeps the records, and for each minute's first one the stream's largest event time then."""

    def __init__(self, largest: Callable[[], int]) -> None:
        super().__init__(quiet=True)
        self.largest = largest
        self.results: list[Result] = []
        self.first_seen_at: dict[int, int] = {}

    def write(self, results: list[Result]) -> None:
        self.results += results
        for r in results:
            self.first_seen_at.setdefault(r.start, self.largest())


@dataclass(frozen=True)
class Row:
    lateness: int
    frames: int
    late_frames: int
    corrections: int
    minutes: int  # closed by the watermark: every minute but the last, which the end of input closes
    exact_first: int
    worst_shortfall: int
    latest_exact: bool
    waits: tuple[int, ...]  # per minute closed by the watermark: seconds of event time to its first record


def run(frames: Iterable[bytes], **overrides: Any) -> tuple[Counting, Collect]:
    """The core on `frames` one at a time (as a live stream polled frame by frame), minutes only,
    with settings `overrides` (e.g. allowed_lateness=5)."""
    settings = load().replace(late_retention=3600, status_interval=0, emit_early_every=0,
                              granularities=parse_granularities("minute"), **overrides)
    counting: Counting | None = None
    out = Collect(lambda: counting.counters.watermark + settings.allowed_lateness)
    counting = Counting(settings, out, CountedOnly())
    for value in frames:
        counting.process([value], [value])
    counting.flush_all()
    return counting, out


def measure(path: str, lateness: int, truth: dict[int, int]) -> Row:
    counting, out = run((frame for batch in Input(path).batches() for frame in batch), allowed_lateness=lateness)
    first = {r.start: r for r in reversed(out.results)}
    last = {r.start: r for r in out.results}
    full = sorted(s for s in last if s != max(last))
    return Row(lateness, counting.meter.frames, counting.counters.total("late_frames"),
               counting.counters.total("corrections"), len(full),
               sum(1 for s in full if first[s].users == last[s].users),
               max(last[s].users - first[s].users for s in last),
               {s: r.users for s, r in last.items()} == truth,
               tuple(out.first_seen_at[s] - (s + 60) for s in full))


def table(rows: list[Row]) -> str:
    return markdown_table(
        ["`ALLOWED_LATENESS`", "late frames", "corrections", "first record after the minute's end (event time)",
         "minutes exact at revision 0", "worst revision-0 shortfall (users)", "latest records = truth"],
        ([f"{r.lateness} s", f"{r.late_frames:,} ({r.late_frames / r.frames:.2%})", f"{r.corrections:,}",
          f"median {statistics.median(r.waits):g} s, max {max(r.waits)} s", f"{r.exact_first} of {r.minutes}",
          f"{r.worst_shortfall}", "yes" if r.latest_exact else "NO"] for r in rows))


def picture(rows: list[Row], sample: str, path: Path = PICTURE) -> Any:
    """The trade-off: a point per lateness (labelled), time to the first record against the frames
    late for it and the first records' worst shortfall. Returns the two axes (a test reads them back)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    waits = [statistics.median(r.waits) for r in rows]
    late = [100 * r.late_frames / r.frames for r in rows]
    figure, axes = pyplot.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    axes.plot(waits, late, marker="o", color="tab:blue", label="frames late for their minute (%): each a correction")
    for r, x, y in zip(rows, waits, late):
        axes.annotate(f"{r.lateness} s", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, color="tab:blue")
    short = axes.twinx()
    short.plot(waits, [r.worst_shortfall for r in rows], marker="s", linestyle="--", color="tab:orange",
               label="worst first record's shortfall (users)")
    short.set_ylabel("users missing from a first record (worst minute)")
    short.set_ylim(bottom=-1)
    figure.legend(loc="upper right", bbox_to_anchor=(0.88, 0.86), fontsize=9)
    axes.set_title(f"{sample}: waiting longer for late frames delays every result, waiting less corrects more\n"
                   f"python -m bench.event_time; every minute's latest record equals the truth at every lateness",
                   fontsize=10)
    axes.set_xlabel("first record of a minute after its end (seconds of event time, median; point labels: ALLOWED_LATENESS)")
    axes.set_ylabel("frames late for their minute (%)")
    axes.set_xlim(-0.5, max(waits) * 1.1 + 1)
    axes.set_ylim(-0.05, max(late) * 1.25 + 0.05)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return axes, short


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--lateness", default="0,1,2,5,10,15")
    parser.add_argument("--picture", type=Path, default=PICTURE)
    args = parser.parse_args(argv)
    truth = {start: users for (granularity, start), users in unique_users(args.path).items()
             if granularity == "minute"}
    rows = [measure(args.path, lateness, truth) for lateness in map(int, args.lateness.split(","))]
    print(table(rows))
    picture(rows, Path(args.path).name.split(".")[0], args.picture)
    print(f"written to {args.picture}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
