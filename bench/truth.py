"""The truth file beside a sample (`X.jsonl.gz` -> `X.truth.jsonl`): exact counts made independently."""
from __future__ import annotations

import json
from pathlib import Path


def unique_users(sample: str | Path) -> dict[tuple[str, int], int]:
    """Exact unique users of every window in the truth file, by (granularity, window start)."""
    path = Path(str(sample).replace(".jsonl.gz", ".truth.jsonl"))
    rows = map(json.loads, path.read_text().splitlines())
    return {(r["granularity"], r["start"]): r["unique"] for r in rows if "start" in r}
