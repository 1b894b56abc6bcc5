"""The file-mode peer: ClickHouse (chDB, in process) counting unique users per minute straight from
the gzipped sample, as ClickHouse's documentation writes it: the `file` table function with the
JSONEachRow format reading the top-level uid and ts (other keys skipped, nested ones included),
`uniqExact(uid)` grouped by `toStartOfMinute`, on `THREADS` threads (2: this machine's cores). Runs in
its own virtualenv (bench/peers/chdb-requirements.txt). Prints one summary line like consumer.py's
and writes the minutes as JSON lines to MINUTES_FILE: {"minute": start, "users": n}. INPUT_MB: the
sample's JSON, for the MB/s figure.

The time is the query's, from its start to its last row (chDB's import left out, as consumer.py's
figure leaves out its own start-up).

    INPUT=data/stream.jsonl.gz MINUTES_FILE=... INPUT_MB=1909.1 python bench/peers/chdb_file.py
"""
from __future__ import annotations

import json
import os
import sys
import time

import chdb
from peer_output import report

QUERY = """
SELECT toUnixTimestamp(toStartOfMinute(toDateTime(ts, 'UTC'))) AS minute, uniqExact(uid) AS users, count() AS frames
FROM file('{path}', 'JSONEachRow', 'uid String, ts Int64')
GROUP BY minute ORDER BY minute
SETTINGS max_threads = {threads}"""


def main() -> int:
    path = os.path.abspath(os.environ["INPUT"]).replace("'", "\\'")
    started = time.monotonic()
    result = chdb.query(QUERY.format(path=path, threads=int(os.environ.get("THREADS", "2"))), "JSONEachRow")
    seconds = time.monotonic() - started
    rows = [json.loads(line) for line in result.bytes().decode().splitlines() if line]
    report("chdb", [(int(r["minute"]), int(r["users"])) for r in rows], sum(int(r["frames"]) for r in rows),
           float(os.environ.get("INPUT_MB", 0)) * 1e6, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
