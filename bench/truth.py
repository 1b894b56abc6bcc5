"""Exact counts to measure against, made independently of the consumer: the truth file beside a
sample (`X.jsonl.gz` -> `X.truth.jsonl`), or else a full `json.loads` of every frame."""
from __future__ import annotations

import gzip
import json
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from uniqcount.core.granularities import GRANULARITIES


def truth_file(sample: str | Path) -> Path:
    return Path(str(sample).replace(".jsonl.gz", ".truth.jsonl"))


def unique_users(sample: str | Path) -> dict[tuple[str, int], int]:
    """Exact unique users of every window in the truth file, by (granularity, window start)."""
    rows = map(json.loads, truth_file(sample).read_text().splitlines())
    return {(r["granularity"], r["start"]): r["unique"] for r in rows if "start" in r}


def by_full_parse(sample: str | Path) -> dict[tuple[str, int], int]:
    """The same from the frames themselves (`of_frames` on the gzipped sample's lines)."""
    with gzip.open(sample, "rb") as lines:
        return of_frames(lines)


def of_frames(lines: Iterable[bytes], granularities: Iterable[str] = GRANULARITIES) -> dict[tuple[str, int], int]:
    """Exact unique users per (granularity, window start) of these frames by a full json.loads."""
    return {key: len(members) for key, members in users_of_frames(lines, granularities).items()}


def users_of_frames(lines: Iterable[bytes], granularities: Iterable[str] = GRANULARITIES
                    ) -> dict[tuple[str, int], set[int]]:
    """The users per (granularity, window start) of these frames by a full json.loads: the top-level
    uid (a string) and ts (a number or a numeric string), every other frame skipped. Each uid is
    stored once, as a small int."""
    chosen = {name: GRANULARITIES[name] for name in granularities}
    ids: dict[str, int] = {}
    users: dict[tuple[str, int], set[int]] = defaultdict(set)
    for line in lines:
        try:
            frame = json.loads(line)
            uid, ts = frame["uid"], int(float(frame["ts"]))
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(uid, str):
            continue
        user = ids.setdefault(uid, len(ids))
        for name, granularity in chosen.items():
            users[name, granularity.start(ts)].add(user)
    return users


def exact_unique_users(sample: str | Path) -> dict[tuple[str, int], int]:
    return unique_users(sample) if truth_file(sample).exists() else by_full_parse(sample)
