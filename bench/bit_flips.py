"""What random timestamps (a flipped bit) do to the counts, with the outlier guard and without.

Flips one of bits 29-33 of the top-level ts (17 to 272 years away, ahead or behind) in N random
frames of a sample, runs the pure core over the stream frame by frame (minutes only, the default
lateness and retention), and compares the latest record of every minute with an exact count of
the frames left untouched, by a full json.loads. The guard's default is OUTLIER_JUMP=600; 0 turns
it off.

    python -m bench.bit_flips ../shared/data/sample-ordered.jsonl.gz [--flips 1,40] [--seed 4]
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys

from bench.event_time import run
from bench.measure import markdown_table
from bench.truth import of_frames


def flip_high_bits(lines: list[bytes], count: int, seed: int) -> tuple[list[bytes], dict[bytes, int]]:
    """`count` frames with one bit of the top-level ts (bits 29-33: 17 to 272 years) flipped;
    returns the new stream and each flipped frame with its new ts."""
    rng = random.Random(seed)
    out, flipped = list(lines), {}
    for i in rng.sample(range(len(lines)), count):
        frame = json.loads(lines[i])
        frame["ts"] = int(float(frame["ts"])) ^ (1 << rng.randint(29, 33))
        out[i] = json.dumps(frame, ensure_ascii=False).encode()
        flipped[out[i]] = frame["ts"]
    return out, flipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--flips", default="1,40")
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    lines = gzip.decompress(open(args.path, "rb").read()).splitlines()
    rows = []
    for flips in map(int, args.flips.split(",")):
        stream, flipped = flip_high_bits(lines, flips, args.seed)
        truth = {start: n for (_, start), n in of_frames((line for line in stream if line not in flipped),
                                                          ["minute"]).items()}
        for jump in (600, 0):
            counting, out = run(stream, outlier_jump=jump)
            latest = {r.start: r.users for r in out.results}
            right = sum(1 for start, users in truth.items() if latest.get(start) == users)
            dead = counting.counters.rejected
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(dead.items()))
            rows.append([str(flips), str(jump), f"{sum(dead.values()):,} ({reasons})", f"{right} of {len(truth)}",
                         f"{counting.counters.total('counted_frames'):,} of {len(stream):,}"])
    print(markdown_table(["frames flipped", "`OUTLIER_JUMP`", "dead-lettered", "minutes of the other frames right",
                          "frames counted"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
