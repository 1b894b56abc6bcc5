"""`./run.sh plot`: unique users per window over time, as a PNG, from the records uniqcount published.

Reads OUTPUT_TOPIC with read_committed (or `--input` a JSON-lines file of records, as consumer.py
prints them) and draws, for one granularity, each window's latest record: the answer a compacted
topic keeps. Windows whose latest record is a correction (revision > 0) are marked; HyperLogLog
windows get their 95% bounds as a band.

    ./run.sh plot [--granularity minute] [--input results.jsonl] [--output results/minute.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from uniqcount import REPO
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.kafka_client import kafka_io
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.progress import error, status

WIDTH, HEIGHT, DPI = 10.0, 4.0, 100  # inches and dots per inch: a 1000 x 400 picture


class Series(NamedTuple):
    starts: list[int]
    users: list[int]
    lower: list[int] | None  # HyperLogLog: the 95% bounds
    upper: list[int] | None
    corrected: list[int]  # starts of the windows whose latest record is a correction


def series(records: Iterable[dict], granularity: str) -> Series:
    """The latest record per window of one granularity, in window order."""
    latest: dict[int, dict] = {}
    for record in records:
        if record.get("granularity") == granularity:
            latest[record["window_start"]] = record
    rows = [latest[start] for start in sorted(latest)]
    bounded = bool(rows) and all("lower_bound" in r for r in rows)
    return Series([r["window_start"] for r in rows], [r["unique_users"] for r in rows],
                  [r["lower_bound"] for r in rows] if bounded else None,
                  [r["upper_bound"] for r in rows] if bounded else None,
                  [r["window_start"] for r in rows if r["revision"] > 0])


def draw(data: Series, granularity: str, path: Path, source: str) -> Any:
    """The picture at `path`; returns its axes (what a test reads the plotted values back from)."""
    import matplotlib
    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot
    from matplotlib.dates import DateFormatter

    times: list[Any] = [datetime.fromtimestamp(t, timezone.utc) for t in data.starts]  # matplotlib plots datetimes
    figure, axes = pyplot.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    axes.plot(times, data.users, marker="o", markersize=3, linewidth=1.2, label="unique users (latest record)")
    if data.lower is not None and data.upper is not None:
        axes.fill_between(times, data.lower, data.upper, alpha=0.25, label="HyperLogLog 95% bounds")
    if data.corrected:
        index = {start: i for i, start in enumerate(data.starts)}
        axes.plot([times[index[s]] for s in data.corrected], [data.users[index[s]] for s in data.corrected],
                  linestyle="none", marker="x", markersize=8, color="red", label="corrected (late frames)")
    axes.set_title(f"Unique users per {granularity} ({len(data.starts):,} windows, {source})")
    axes.set_xlabel("window start (UTC)")
    axes.set_ylabel("unique users")
    axes.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d %H:%M", tz=timezone.utc))
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    figure.autofmt_xdate()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return axes


def read_records(args: argparse.Namespace, settings: Settings) -> tuple[list[dict], str]:
    if args.input:
        try:
            with open(args.input, "rb") as lines:
                return [json.loads(line) for line in lines if line.strip()], Path(args.input).name
        except OSError as exc:
            raise SystemExit(f"error: cannot read {args.input}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise SystemExit(f"error: {args.input} is not JSON lines of records: {exc}") from None
    kafka_io.require_broker(settings)
    topic = settings.output_topic
    return [json.loads(bytes(m.value)) for m in kafka_io.read_topic(settings, topic)], topic


def main(argv: list[str] | None = None) -> int:
    parser = config.OneLineParser(prog="./run.sh plot", description=__doc__)
    parser.add_argument("--granularity", default="minute", choices=list(GRANULARITIES))
    parser.add_argument("--input", metavar="PATH", help="JSON lines of records [default: OUTPUT_TOPIC, read_committed]")
    parser.add_argument("--output", metavar="PATH", help="the PNG [default: results/<granularity>.png]")
    config.add_flags(parser, [*config.CONNECTION, "OUTPUT_TOPIC"])
    args = parser.parse_args(argv)
    settings = config.from_args(args)
    try:
        records, source = read_records(args, settings)
    except kafka_io.BrokerUnavailable as exc:
        return error(str(exc))
    data = series(records, args.granularity)
    if not data.starts:
        return error(f"no {args.granularity} records in {source}")
    path = Path(args.output) if args.output else REPO / "results" / f"{args.granularity}.png"
    draw(data, args.granularity, path, source)
    status(f"plot: {len(data.starts):,} {args.granularity} windows, {len(data.corrected):,} corrected, to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
