"""Where a script's time goes: a py-spy profile of it, split into the stages this project cares about.

    python -m bench.profile -- python consumer.py --exit-at-end --quiet
    python -m bench.profile --raw prof.txt          # an existing `py-spy record -f raw` file

Each sample of the main thread goes to the stage of its innermost frame that names one (so zstd
called from the batch decoder counts as inflating, not decoding); background threads are listed
by name. py-spy must be on PATH (`pip install py-spy`); it is a measuring tool, not a dependency.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

STAGES = [  # (stage, path fragments of its frames), innermost match wins
    ("zstd/lz4/gzip: inflating (consumer) or compressing (producer)", ("kafka/codec.py", "isal/", "zstandard")),
    ("Kafka record batches: decoding (consumer) or building (producer)", ("uniqcount/kafka_client/record_batches.py",
                                                                      "uniqcount/kafka_client/fetch.py", "kafka/record/")),
    ("JSON parsing (uid/ts)", ("uniqcount/core/frames.py",)),
    ("windows and counters", ("uniqcount/core/partition.py", "uniqcount/core/minutes.py", "uniqcount/core/windowset.py", "uniqcount/core/counters.py",
                              "uniqcount/core/userset.py", "uniqcount/core/outliers.py")),
    ("sending: our outputs and blocks, kafka-python's send path", ("uniqcount/runtime/outputs.py", "uniqcount/core/records.py",
                                                                   "uniqcount/kafka_client/block_producer.py", "kafka/producer/")),
    ("reading and splitting lines", ("uniqcount/runtime/sources.py",)),
    ("kafka-python network, fetch, poll, wakeups", ("kafka/",)),
]


def stage(frames: list[str]) -> str:
    for frame in reversed(frames):
        for name, fragments in STAGES:
            if any(fragment in frame for fragment in fragments):
                return name
    return "other (our loop, startup)"


def split(raw: str) -> tuple[Counter[str], Counter[str], int]:
    """(main-thread samples by stage, samples by background thread, all samples)."""
    main: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        if "MainThread" in frames[0]:
            main[stage(frames[1:])] += n
        else:
            threads[frames[0].split(": ", 1)[-1]] += n
    return main, threads, total


def table(main: Counter[str], threads: Counter[str], total: int) -> str:
    main_total = sum(main.values())
    lines = [f"main thread: {main_total:,} of {total:,} samples ({main_total / total:.0%})", "",
             "| main thread: stage | share |", "|---|---:|"]
    lines += [f"| {name} | {n / main_total:.0%} |" for name, n in main.most_common()]
    lines += ["", "| background thread | samples, as a share of the main thread's |", "|---|---:|"]
    lines += [f"| {name} | {n / main_total:.0%} |" for name, n in threads.most_common() if n / main_total >= 0.01]
    return "\n".join(lines)


def record(command: list[str], rate: int) -> str:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("error: py-spy is not on PATH (pip install py-spy)")
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        subprocess.run([py_spy, "record", "--threads", "-r", str(rate), "-f", "raw", "-o", out.name, "--", *command],
                       check=True, stdout=subprocess.DEVNULL)
        return open(out.name).read()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--raw", help="a py-spy raw profile to split instead of recording one")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("command", nargs="*", help="the command to profile (after --)")
    args = parser.parse_args()
    if not args.raw and not args.command:
        parser.error("give a command after -- or --raw FILE")
    raw = open(args.raw).read() if args.raw else record(args.command, args.rate)
    print(table(*split(raw)))


if __name__ == "__main__":
    sys.exit(main())
