"""What every peer of `./run.sh bench --peers` hands back, alike: its minutes as JSON lines in
MINUTES_FILE ({"minute": start, "users": n}) and one summary line like consumer.py's on stderr. The
peers import it from beside them (their own virtualenvs have no uniqcount)."""
from __future__ import annotations

import json
import os
import sys
from typing import Iterable


def report(name: str, minutes: Iterable[tuple[int, int]], frames: int, size_bytes: float, seconds: float) -> None:
    with open(os.environ["MINUTES_FILE"], "w") as out:
        out.writelines(json.dumps({"minute": start, "users": users}) + "\n" for start, users in sorted(minutes))
    print(f"{name}: done: {frames:,} frames, {size_bytes / 1e6:,.1f} MB in {seconds:.1f} s: {frames / seconds:,.0f} "
          f"frames/s, {size_bytes / 1e6 / seconds:,.1f} MB/s", file=sys.stderr)
