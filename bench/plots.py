"""The harness's comparison as a picture (docs/pictures/bench.png): frames/s of each step, best run,
the published baseline beside them. Drawn from bench/results/bench.json, the run's own figures.

    python -m bench.plots        # again from the last bench.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.measure import RESULTS
from uniqcount import REPO

PICTURE = REPO / "docs" / "pictures" / "bench.png"
WIDTH, HEIGHT, DPI = 10.0, 4.5, 100


def harness_picture(report: dict, path: Path = PICTURE) -> Any:
    """The picture at `path`; returns its axes (a test reads the bars back)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    steps = [r["step"] for r in report["results"]]
    rates = [r["frames_per_s"] for r in report["results"]]
    colours = ["tab:gray" if step.startswith("baseline") else "tab:blue" for step in steps]
    figure, axes = pyplot.subplots(figsize=(WIDTH, HEIGHT), dpi=DPI)
    bars = axes.barh(steps[::-1], rates[::-1], color=colours[::-1])
    axes.bar_label(bars, labels=[f"{rate / 1000:.0f}k" for rate in rates[::-1]], padding=3)
    machine = report["machine"]
    axes.set_title(f"Canonical sample, 1M frames of 1.9 KB: frames/s of each step, best run\n"
                   f"{report['command']}, {report['date']}, {machine['cores']} cores, broker on the same machine",
                   fontsize=10)
    axes.set_xlabel("frames per second (best run)")
    axes.set_xlim(0, max(rates) * 1.15)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    pyplot.close(figure)
    return axes


def main() -> int:
    harness_picture(json.loads((RESULTS / "bench.json").read_text()))
    print(f"written to {PICTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
