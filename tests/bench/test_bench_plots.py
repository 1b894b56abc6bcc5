"""The benchmarks' pictures are drawn from their own results: the harness's one bar per step at
its best frames/s, the event-time bench's trade-off as the lateness rule gives it on the sample."""
from __future__ import annotations

import gzip
import json
import statistics

from bench import event_time
from bench.measure import RESULTS
from bench.plots import DPI, HEIGHT, WIDTH, harness_picture
from bench.truth import unique_users
from tests.helpers import LATE, needs_samples, png_size


def test_the_harness_picture_shows_each_steps_frames_per_second(tmp_path):
    report = json.loads((RESULTS / "bench.json").read_text())  # the last ./run.sh bench, committed
    path = tmp_path / "bench.png"
    axes = harness_picture(report, path)
    assert png_size(path) == (int(WIDTH * DPI), int(HEIGHT * DPI))
    bars = {tick.get_text(): patch.get_width() for tick, patch in zip(axes.get_yticklabels(), axes.patches)}
    assert bars == {r["step"]: r["frames_per_s"] for r in report["results"]}
    assert axes.get_xlabel() == "frames per second (best run)" and report["date"] in axes.get_title()


def in_arrival_order(path) -> list[int]:
    """Every frame's top-level ts, in file order, from a full json.loads."""
    with gzip.open(path, "rb") as lines:
        return [int(float(json.loads(line)["ts"])) for line in lines]


def late_and_waits(stamps: list[int], lateness: int) -> tuple[int, list[int]]:
    """Frames whose minute had been emitted when they came, and for each minute the stream's
    largest timestamp when it was emitted minus its end: the rule restated on plain integers."""
    largest, late, open_ends, waits = None, 0, set(), {}
    for ts in stamps:
        end = ts - ts % 60 + 60
        if largest is not None and end <= largest - lateness:
            late += 1
        elif end not in waits:
            open_ends.add(end)
        largest = ts if largest is None else max(largest, ts)
        for closed in [e for e in open_ends if e <= largest - lateness]:
            open_ends.discard(closed)
            waits[closed] = largest - closed
    last = max(waits.keys() | open_ends)
    return late, [wait for end, wait in sorted(waits.items()) if end != last]


@needs_samples
def test_the_event_time_picture_shows_the_measured_trade_off(tmp_path):
    stamps = in_arrival_order(LATE)
    truth = {start: users for (granularity, start), users in unique_users(LATE).items() if granularity == "minute"}
    rows = [event_time.measure(str(LATE), lateness, truth) for lateness in (0, 5, 10)]
    path = tmp_path / "event-time.png"
    late_axes, short_axes = event_time.picture(rows, "sample-late", path)
    assert png_size(path) == (1000, 450)
    (line,) = late_axes.get_lines()
    expected = [late_and_waits(stamps, lateness) for lateness in (0, 5, 10)]
    assert list(line.get_xdata()) == [statistics.median(waits) for _, waits in expected]
    assert list(line.get_ydata()) == [100 * late / len(stamps) for late, _ in expected]
    assert expected[2][0] == 0 < expected[1][0] < expected[0][0]  # the sample has frames up to 10 s late
    (shortfall,) = short_axes.get_lines()
    assert list(shortfall.get_ydata()) == [r.worst_shortfall for r in rows] and rows[2].worst_shortfall == 0
    assert all(r.latest_exact for r in rows)
