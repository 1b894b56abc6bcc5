"""./run.sh plot: the picture is made from the records given, whatever their order: each window's
latest record, corrections marked, HyperLogLog bounds as a band, at the size promised."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

from matplotlib.dates import num2date

from tests.helpers import LATE, needs_samples, png_size, script
from uniqcount import REPO
from uniqcount.cli.plot import DPI, HEIGHT, WIDTH, draw, series

pytestmark = needs_samples


def plot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "uniqcount.cli.plot", *args], cwd=REPO, capture_output=True, timeout=120)


def latest(records: list[dict], granularity: str) -> dict[int, dict]:
    out = {}
    for record in records:
        if record["granularity"] == granularity:
            out[record["window_start"]] = record
    return out


def test_a_picture_of_the_latest_records_of_sample_late(tmp_path):
    run = script("consumer.py", "--input", str(LATE))
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in run.stdout.splitlines()]
    results = tmp_path / "results.jsonl"
    results.write_bytes(run.stdout)
    picture = tmp_path / "minute.png"
    plotted = plot("--input", str(results), "--output", str(picture))
    assert plotted.returncode == 0, plotted.stderr
    assert png_size(picture) == (int(WIDTH * DPI), int(HEIGHT * DPI))
    expected = latest(records, "minute")
    axes = draw(series(records, "minute"), "minute", tmp_path / "again.png", "sample-late")
    line, corrections = axes.get_lines()
    starts = [int(num2date(x).timestamp()) for x in line.get_xdata(orig=False)]
    assert starts == sorted(expected) and list(line.get_ydata()) == [expected[s]["unique_users"] for s in starts]
    marked = sorted(int(num2date(x).timestamp()) for x in corrections.get_xdata(orig=False))
    assert marked == sorted(s for s, r in expected.items() if r["revision"] > 0) != []
    assert "Unique users per minute" in axes.get_title() and axes.get_ylabel() == "unique users"


def test_hll_windows_get_their_bounds_as_a_band(tmp_path):
    day = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp())
    records = [{"granularity": "day", "window_start": day + n * 86_400, "unique_users": 100 + n, "revision": 0,
                "lower_bound": 90 + n, "upper_bound": 110 + n} for n in range(3)]
    data = series(reversed(records), "day")
    assert data.starts == [r["window_start"] for r in records] and data.lower == [90, 91, 92]
    axes = draw(data, "day", tmp_path / "day.png", "test")
    (band,) = axes.collections
    low, high = band.get_paths()[0].vertices[:, 1].min(), band.get_paths()[0].vertices[:, 1].max()
    assert (low, high) == (90, 112)


def test_no_records_of_that_granularity_is_one_line(tmp_path):
    empty = tmp_path / "none.jsonl"
    empty.write_text("")
    done = plot("--input", str(empty), "--output", str(tmp_path / "x.png"))
    assert done.returncode == 1 and done.stderr.decode().strip().startswith("error: no minute records")
