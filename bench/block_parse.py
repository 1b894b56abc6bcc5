"""Whole blocks at once: msgspec's decode_lines against bytes.split and one decode per line.

    python -m bench.block_parse [--frames 100000]

decode_lines reads a stream of JSON values, not lines, so it alone would count frames that a line
reader (and the truth files) call bad JSON; the checked variants add what keeps one frame per line.
Each variant's (uid, ts) are checked against parse_frames on the same lines. The blocks are file
mode's own (sources.Input, 256 KB), each copied just before each timed call so that it is in the CPU
cache, as a block just inflated is. Prints µs a frame, the sum of three passes.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import msgspec
import numpy

from uniqcount.core.frames import _Plain, parse_frames
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime import config
from uniqcount.runtime.sources import Input

BLOCK = 1 << 18
NEWLINE, OPEN, CLOSE = ord("\n"), ord("{"), ord("}")

decode_lines = msgspec.json.Decoder(_Plain).decode_lines  # the type parse_frames decodes each line to


def pairs(frames: list[Any]) -> list[tuple[str, int]]:
    return [(f.uid, f.ts) for f in frames]


def split_then_parse(block: bytes) -> list[tuple[str, int]]:
    """What file mode does now."""
    return parse_frames(block.split(b"\n")[:-1])[0]


def unchecked(block: bytes) -> list[tuple[str, int]]:
    return pairs(decode_lines(block))


def one_value_per_line(block: bytes, values: int, newlines: int, between_braces: int) -> bool:
    """Every newline sits between `}` and `{` (never valid inside one value, so no value holds a
    newline), and there are as many lines as values: then each line holds exactly one value."""
    return block[:1] == b"{" and block[-2:] == b"}\n" and newlines == values == between_braces + 1


def checked_by_count(block: bytes) -> list[tuple[str, int]] | None:
    frames = decode_lines(block)
    if not one_value_per_line(block, len(frames), block.count(b"\n"), block.count(b"}\n{")):
        return None
    return pairs(frames)


def checked_by_numpy(block: bytes) -> list[tuple[str, int]] | None:
    frames = decode_lines(block)
    data = numpy.frombuffer(block, numpy.uint8)
    inner = numpy.flatnonzero(data == NEWLINE)[:-1]
    between = int(numpy.count_nonzero((data[inner - 1] == CLOSE) & (data[inner + 1] == OPEN)))
    if not one_value_per_line(block, len(frames), len(inner) + 1, between):
        return None
    return pairs(frames)


VARIANTS: dict[str, Callable[[bytes], list[tuple[str, int]] | None]] = {
    "bytes.split + parse_frames (file mode now)": split_then_parse,
    "decode_lines, unchecked (not line-exact)": unchecked,
    "decode_lines + bytes.count checks": checked_by_count,
    "decode_lines + numpy checks": checked_by_numpy,
}


def show_why_unchecked_is_wrong() -> None:
    for text in (b'{"uid":"a","ts":1} {"uid":"b","ts":2}\n', b'{"uid":"a",\n"ts":1}\n'):
        lines = text.split(b"\n")[:-1]
        print(f"{text!r}: lines read as {parse_frames(lines)}; decode_lines: {unchecked(text)}; "
              f"checked: {checked_by_count(text)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    args = parser.parse_args()
    show_why_unchecked_is_wrong()
    source = Input(str(ensure_sample(config.load())))
    blocks = [b"\n".join(lines) + b"\n" for lines in source.batches(BLOCK, limit=args.frames)]
    source.close()
    frames = sum(block.count(b"\n") for block in blocks)
    for variant in VARIANTS.values():
        assert all(variant(block) == split_then_parse(block) for block in blocks), variant.__name__
    seconds = dict.fromkeys(VARIANTS, 0.0)
    for _ in range(3):
        for block in blocks:
            for name, variant in VARIANTS.items():  # interleaved: each variant sees the same noise
                warm = bytes(bytearray(block))
                start = time.perf_counter()
                variant(warm)
                seconds[name] += time.perf_counter() - start
    print(f"{frames:,} frames in {len(blocks)} blocks of up to {BLOCK // 1024} KB, three passes:")
    for name, total in seconds.items():
        print(f"  {name:45s} {total / frames / 3 * 1e6:.2f} µs a frame")


if __name__ == "__main__":
    main()
