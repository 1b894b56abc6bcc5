"""JSON parsers on the real frames: a full parse against reading only the top-level uid and ts.

    python -m bench.parsers [--frames 50000]

Every parser's uid/ts are checked against uniqcount's parse_frames on the same frames. Best of three
passes each. Results: bench/results/parsers.json and the table in docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable

import msgspec
import orjson
import simdjson

from uniqcount.core.frames import parse_frame, parse_frames
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime import config

from .measure import calls_per_second, first_lines, machine, write_result, write_section
from .serialization import UidTs, uid_ts


def simdjson_uid_ts() -> Callable[[bytes], tuple[str, int]]:
    parser = simdjson.Parser()

    def read(data: bytes) -> tuple[str, int]:
        document = parser.parse(data)  # lazy: only the two keys become Python objects
        return document["uid"], document["ts"]
    return read


def parsers() -> dict[str, Callable[[bytes], Any]]:
    """name -> one frame's bytes to its (uid, ts)."""
    typed = msgspec.json.Decoder(UidTs).decode
    untyped = msgspec.json.Decoder().decode
    return {
        "json.loads, full": lambda d: uid_ts(json.loads(d)),
        "orjson.loads, full": lambda d: uid_ts(orjson.loads(d)),
        "msgspec, full": lambda d: uid_ts(untyped(d)),
        "simdjson, uid/ts (lazy document)": simdjson_uid_ts(),
        "msgspec typed, uid/ts (the rest skipped)": lambda d: (lambda f: (f.uid, f.ts))(typed(d)),
        "uniqcount parse_frame (typed + checks)": parse_frame,
    }


def measure(lines: list[bytes]) -> list[dict[str, Any]]:
    truth, bad = parse_frames(lines)
    assert not bad
    rows = []
    for name, parse in parsers().items():
        assert [tuple(parse(line)) for line in lines] == truth, f"{name} reads other uid/ts"
        rows.append({"parser": name, "frames_per_s": calls_per_second(parse, lines)})
    rows.append({"parser": "uniqcount parse_frames (a batch, one call)",
                 "frames_per_s": calls_per_second(parse_frames, [lines]) * len(lines)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=50_000)
    args = parser.parse_args()
    lines = first_lines(ensure_sample(config.load()), args.frames)
    rows = measure(lines)
    size = sum(map(len, lines)) / len(lines)
    result = {"command": f"python -m bench.parsers --frames {args.frames}", "mean_frame_bytes": size,
              "machine": machine(), "rows": rows}
    write_result("parsers.json", result)
    text = "\n".join([f"Measured {result['machine']['date']} with `{result['command']}` ({len(lines):,} frames of {size:,.0f} bytes on average).",
                      "", "| parser | frames/s | µs a frame |", "|---|---:|---:|",
                      *(f"| {r['parser']} | {r['frames_per_s']:,.0f} | {1e6 / r['frames_per_s']:.2f} |" for r in rows)])
    write_section(config.REPO / "docs" / "PERFORMANCE.md", "parsers", text, "Performance")
    print(text)


if __name__ == "__main__":
    main()
