"""Generates frames in the format of the problem's original data generator, with its knobs.

    python -m uniqcount.devtools.generate -c 1000000 -r 1000 -n 100000 -s 2048 -o data/stream.jsonl.gz

Every trap of the original is here: up to a few random keys before `uid`/`ts`, `uid` before or
after `ts` at random, strings with JSON escapes and Cyrillic UTF-8, numbers, booleans, arrays,
nested objects that hold `uid`/`ts` keys of their own, repeated top-level keys, padding with random
keys up to the size limit. Frame i has event time start + (i // rate) * interval; a delayed frame
gets 1..delay seconds less. Same knobs and seed, same bytes.

    python -m uniqcount.devtools.generate -c 3153600 -r 1 --interval 20 -n 50000 -s 256   # two sparse years
"""
from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from typing import BinaryIO, Iterator

from tqdm import tqdm

from uniqcount.runtime.progress import error

START_TS = 1468244384  # 2016-07-11 13:39:44 UTC, as in the original sample

WORDS = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut "
         "labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
         "laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in "
         "voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat "
         "non proident, sunt in culpa qui officia deserunt mollit anim id est laborum.").split()
PHRASES = [
    "D allows writing large code fragments without redundantly",
    "specifying types, like dynamic languages do. On the",
    "other hand, static inference deduces types and other",
    "code properties, giving the best of both the",
    "static and the dynamic worlds. Show example Automatic",
    "memory management makes for safe, simple, and robust",
    "code. D also supports scoped resource management (aka",
    "the RAII idiom) and scope statements for deterministic",
    "transactional code that is easy to write and",
    "read. Show example Built-in linear and associative arrays,",
    "slices, and ranges make daily programming simple and",
    "pleasant for tasks, both small and large. Show",
]
CYRILLIC = ["Свобода, слава и любовь", "Тогда какой-то злобный гений", "Когда возвышенные чувства,",
            "Мой дядя самых честных правил", "Я помню чудное мгновенье"]
SEPARATORS = [" ", "\n", "\t", "\f", "\r", "\b", "\\", "/", '"']


class Fragments:
    """Pre-encoded JSON values and keys: a frame is a join of these, which keeps generation fast."""

    def __init__(self, rng: random.Random, pool: int = 600):
        self.rng = rng
        self.keys = [json.dumps(w) for w in WORDS]
        self.values = [self._value(rng, depth=0) for _ in range(pool)]
        # nested objects whose own "uid"/"ts" keys would fool a text scan for "uid":
        self.decoys = [self._decoy(rng) for _ in range(pool // 10)]

    def _string(self, rng: random.Random) -> str:
        kind = rng.random()
        if kind < 0.15:
            return rng.choice(CYRILLIC)
        if kind < 0.25:
            return "example"
        return rng.choice(SEPARATORS).join(rng.choice(PHRASES).split(" "))

    def _value(self, rng: random.Random, depth: int) -> str:
        kind = rng.random()
        if kind < 0.45 or depth > 2:
            return json.dumps(self._string(rng), ensure_ascii=False)
        if kind < 0.6:
            return json.dumps(rng.choice([round(rng.random(), 6), rng.randint(0, 300)]))
        if kind < 0.7:
            return rng.choice(["true", "false"])
        if kind < 0.85:
            return "[" + ",".join(self._value(rng, depth + 1) for _ in range(rng.randint(0, 3))) + "]"
        return "{" + ",".join(f"{rng.choice(self.keys)}:{self._value(rng, depth + 1)}"
                              for _ in range(rng.randint(0, 4))) + "}"

    def _decoy(self, rng: random.Random) -> str:
        fields = [f"{rng.choice(self.keys)}:{self._value(rng, 2)}" for _ in range(rng.randint(0, 3))]
        fields.append('"uid":' + rng.choice(['"example"', json.dumps(self._string(rng)), "{}", "17"]))
        fields.append('"ts":' + rng.choice(['"example"', json.dumps(self._string(rng)), "1468244384", "[]"]))
        rng.shuffle(fields)
        return "{" + ",".join(fields) + "}"

    def field(self) -> str:
        rng = self.rng
        value = rng.choice(self.decoys) if rng.random() < 0.04 else rng.choice(self.values)
        return f"{rng.choice(self.keys)}:{value}"


def frames(count: int, rate: int, users: int, size_limit: int, max_delay: int, delayed_percent: float,
           string_ts_percent: float, seed: int, start: int = START_TS, interval: int = 1) -> Iterator[bytes]:
    rng = random.Random(seed)
    fragments = Fragments(rng)
    uids = [f"{rng.getrandbits(76):019x}" for _ in range(users)]
    for i in range(count):
        ts = start + (i // rate) * interval
        if max_delay > 0 and rng.random() * 100 < delayed_percent:
            ts -= rng.randint(1, max_delay)
        ts_json = f'"{ts}"' if rng.random() * 100 < string_ts_percent else str(ts)
        head = [fragments.field() for _ in range(rng.choice((0, 0, 1, 2, 3)))]
        pair = [f'"uid":"{rng.choice(uids)}"', f'"ts":{ts_json}']
        if rng.random() < 0.5:
            pair.reverse()
        parts = head + pair
        length = sum(map(len, parts))
        while length < size_limit * 0.85:
            part = fragments.field()
            parts.append(part)
            length += len(part) + 1
        yield ("{" + ",".join(parts) + "}").encode()


def open_output(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdout.buffer
    return gzip.open(path, "wb", compresslevel=3) if path.endswith(".gz") else open(path, "wb")  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m uniqcount.devtools.generate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--count", type=int, default=1_000_000, help="frames (default 1000000)")
    parser.add_argument("-r", "--rate", type=int, default=1000, help="frames per second of event time (1000)")
    parser.add_argument("-i", "--interval", type=int, default=1,
                        help="seconds of event time between one second's frames and the next (1); "
                             "-r 1 -i 20: a frame every 20 s")
    parser.add_argument("-n", "--users", type=int, default=100_000, help="distinct users in the pool (100000)")
    parser.add_argument("-s", "--size-limit", type=int, default=2048, help="bytes a frame is padded to (2048)")
    parser.add_argument("-d", "--max-delay", type=int, default=0, help="largest delay in seconds (0)")
    parser.add_argument("-p", "--delayed-percent", type=float, default=0.0, help="percent of frames delayed (0)")
    parser.add_argument("--string-ts-percent", type=float, default=0.0,
                        help="percent of frames whose ts is a numeric string (0)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--start", type=int, default=START_TS, help=f"first event time ({START_TS})")
    parser.add_argument("-o", "--output", default="-", help="file (.gz: gzip) or - for stdout (default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if min(args.count, args.rate, args.interval, args.users, args.size_limit) <= 0:
        return error("count, rate, interval, users and size limit must be positive", 2)
    out = open_output(args.output)
    stream = frames(args.count, args.rate, args.users, args.size_limit, args.max_delay,
                    args.delayed_percent, args.string_ts_percent, args.seed, args.start, args.interval)
    with tqdm(total=args.count, unit=" frames", unit_scale=True, file=sys.stderr,
              disable=not sys.stderr.isatty(), desc="generating") as bar:
        for n, frame in enumerate(stream, 1):
            out.write(frame + b"\n")
            if n % 10_000 == 0:
                bar.update(10_000)
    if out is not sys.stdout.buffer:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
