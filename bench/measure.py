"""Running a script to its end and reading what it says: time, peak RSS, its summary's rates."""
from __future__ import annotations

import gzip
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable

from kafka import KafkaAdminClient

from uniqcount import REPO
from uniqcount.devtools import generate

RESULTS = REPO / "bench" / "results"


def measured(command: list[str], env: dict[str, str] | None = None) -> tuple[bytes, str, float, int]:
    """Run a script to its end: (stdout, stderr, seconds, peak RSS in bytes of that process alone)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, cwd=REPO,
                                   env={**os.environ, **(env or {})})
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        errors.seek(0)
        stderr = errors.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{stderr}")
    return stdout, stderr, seconds, usage.ru_maxrss * 1024  # KB on Linux


def summary_line(stderr: str) -> str:
    """The script's last line: its rates and totals."""
    return stderr.strip().splitlines()[-1]


def rates(summary: str) -> dict[str, float]:
    """frames/s and MB/s from a summary line (`... in 13.7 s: 73,177 frames/s, 139.7 MB/s ...`)."""
    match = re.search(r"in ([\d.]+) s: ([\d,]+) frames/s, ([\d.,]+) MB/s", summary)
    if not match:
        raise ValueError(f"no rates in: {summary}")
    seconds, frames, mb = (float(group.replace(",", "")) for group in match.groups())
    return {"seconds": seconds, "frames_per_s": frames, "mb_per_s": mb}


def machine() -> dict[str, str | int]:
    """When, and on what: cores, CPU model, OS and Python, so that a reader can compare numbers."""
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count() or 0, "cpu": model, "os": platform.platform(), "python": platform.python_version()}


def generated_once(path: Path, generator_args: list[str]) -> Path:
    """`python -m uniqcount.devtools.generate ARGS` into `path`, unless an earlier run left it there; a run
    cut short leaves only a `.partial.gz` behind, never a half file under the real name."""
    if not path.exists():
        print(f"generating {path} ...", file=sys.stderr)
        partial = path.with_name(path.name + ".partial.gz")
        generate.main([*generator_args, "-o", str(partial)])
        partial.rename(path)
    return path


def write_result(name: str, data: dict) -> Path:
    """bench/results/NAME as indented JSON; returns its path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out


def markdown_table(header: list[str], rows: Iterable[list[str]], align: str = "---") -> str:
    """A Markdown table; `align` is the separator of each column after the first (e.g. "---:")."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "|".join([align] * (len(header) - 1)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def write_section(path: Path, name: str, text: str, title: str) -> None:
    """Put `text` between the `<!-- NAME:start -->` and `<!-- NAME:end -->` markers of a Markdown
    file (made with `title` when missing; the markers are appended when the file has none),
    leaving the prose around them as it is."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    old = path.read_text() if path.exists() else f"# {title}\n"
    if start not in old:
        old += f"\n{start}\n{end}\n"
    path.write_text(old[:old.index(start)] + f"{start}\n{text}\n{end}" + old[old.index(end) + len(end):])


def calls_per_second(function: Callable[[Any], Any], items: Iterable[Any], repeat: int = 3) -> float:
    """`function` over every item, best of `repeat` passes: the pass least disturbed by the rest of
    the machine."""
    items = list(items)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - started)
    return len(items) / best


def first_lines(path: Path, count: int) -> list[bytes]:
    """The first `count` lines of a gzipped JSON Lines file, without their terminators."""
    with gzip.open(path) as f:
        return [line.rstrip(b"\n") for line in islice(f, count)]


def step(name: str, command: list[str], env: dict[str, str], repeat: int = 1) -> dict:
    """Run a script `repeat` times (each Kafka consumer run in a group of its own, so each reads the
    whole topic); the best run is reported, with the range, since this shared 2-core machine varies
    by ±15% from run to run. Peak RSS is the largest of the runs."""
    runs = []
    for attempt in range(repeat):
        print(f"bench: {name} ({attempt + 1}/{repeat}) ...", file=sys.stderr)
        _, stderr, seconds, peak = measured(command, {**env, "CONSUMER_GROUP": f"{env.get('CONSUMER_GROUP', 'g')}-{attempt}"})
        summary = summary_line(stderr)
        print(f"  {summary}", file=sys.stderr)
        runs.append({**rates(summary), "wall_seconds": round(seconds, 1), "peak_rss_mb": round(peak / 1e6),
                     "summary": summary})
    best = max(runs, key=lambda r: r["frames_per_s"])
    shown = " ".join(["python", *command[1:]]).replace(str(REPO) + "/", "")
    return {"step": name, "command": shown, **best, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "frames_per_s_runs": [r["frames_per_s"] for r in runs]}


def delete_run_topics(bootstrap: str, run: str) -> None:
    """The topics a harness run made (their names carry its run id), deleted when it ends."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([t for t in admin.list_topics() if run in t])
    finally:
        admin.close()
