"""The harness's picture is drawn from a run's own results: one bar per step, its best frames/s."""
from __future__ import annotations

import json
import struct

from bench.measure import RESULTS
from bench.plots import DPI, HEIGHT, WIDTH, harness_picture


def test_the_harness_picture_shows_each_steps_frames_per_second(tmp_path):
    report = json.loads((RESULTS / "bench.json").read_text())  # the last ./run.sh bench, committed
    path = tmp_path / "bench.png"
    axes = harness_picture(report, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", data[16:24]) == (int(WIDTH * DPI), int(HEIGHT * DPI))
    bars = {tick.get_text(): patch.get_width() for tick, patch in zip(axes.get_yticklabels(), axes.patches)}
    assert bars == {r["step"]: r["frames_per_s"] for r in report["results"]}
    assert axes.get_xlabel() == "frames per second (best run)" and report["date"] in axes.get_title()
