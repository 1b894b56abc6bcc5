"""A week of frames (700,000, 11,668 minutes) through every granularity, via stdin and via the broker:
minutes and hours exact, days to years within 3 relative standard errors of the truth and inside their
own bounds. The truth file was computed independently by a full JSON parse."""
from __future__ import annotations

import gzip

import pytest

from tests.helpers import VIA, WEEK, as_truth, latest_per_key, run_consumer, truth_windows
from uniqcount.core.counters import DEFAULT_LG_K, hll_relative_standard_error

needs_week = pytest.mark.skipif(not WEEK.exists(), reason="../shared/data is not beside the repo")


@needs_week
@pytest.mark.parametrize("via", VIA)
def test_sample_week_exact_minutes_and_hours_and_bounded_hll_beyond(via, request, tmp_path):
    records, dead, stderr = run_consumer(via, gzip.decompress(WEEK.read_bytes()), request=request,
                                         tmp_path=tmp_path)
    assert dead == [] and "counted 700,000" in stderr
    for granularity in ("minute", "hour"):
        latest = latest_per_key(records, granularity)
        assert as_truth(latest) == truth_windows(WEEK, granularity)
        assert all(r["estimate"] == "exact" and r["final"] and "lower_bound" not in r for r in latest)
    three_rse = 3 * hll_relative_standard_error(DEFAULT_LG_K)
    inside, total = 0, 0
    for granularity in ("day", "week", "month", "year"):
        latest, truth = latest_per_key(records, granularity), truth_windows(WEEK, granularity)
        assert [(r["window_start"], r["frames"]) for r in latest] == [(t["window_start"], t["frames"]) for t in truth]
        for record, exact in zip(latest, (t["unique_users"] for t in truth)):
            assert record["estimate"] == "hll" and record["final"]
            assert abs(record["unique_users"] - exact) <= three_rse * exact, (granularity, record, exact)
            inside += record["lower_bound"] <= exact <= record["upper_bound"]
            total += 1
    assert inside >= 0.95 * total, f"the truth inside the bounds in {inside} of {total} windows"
    provisional = [r for r in records if not r["final"]]
    assert {r["granularity"] for r in provisional} == {"hour", "day", "week", "month", "year"}
