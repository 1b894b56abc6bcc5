"""The HyperLogLog counter against exact truth: error within 3 relative standard errors, the truth
inside its own 95% bounds in at least 95% of windows, fixed size, and lossless merge/serialisation."""
from __future__ import annotations

import random

from uniqcount.core.counters import DEFAULT_LG_K, HllCounter, hll_relative_standard_error


def windows(count: int, seed: int) -> list[list[str]]:
    """Random windows: 1 to 60,000 distinct uids each, every uid repeated 1-3 times, shuffled."""
    rng = random.Random(seed)
    out = []
    for w in range(count):
        users = [f"{w}-{rng.getrandbits(64):016x}" for _ in range(rng.randint(1, 60_000))]
        frames = users * rng.randint(1, 3)
        rng.shuffle(frames)
        out.append(frames)
    return out


def counted(frames: list[str], lg_k: int = DEFAULT_LG_K) -> HllCounter:
    counter = HllCounter(lg_k)
    for uid in frames:
        counter.add(uid)
    return counter


def test_error_within_three_standard_errors_and_truth_inside_the_bounds():
    rse = hll_relative_standard_error(DEFAULT_LG_K)
    assert abs(rse - 0.0081) < 0.0001
    inside, errors = 0, []
    sample = windows(60, seed=7)
    for frames in sample:
        truth = len(set(frames))
        counter = counted(frames)
        errors.append(abs(counter.count() - truth) / truth)
        low, high = counter.bounds()
        inside += low <= truth <= high
    assert max(errors) <= 3 * rse, f"worst relative error {max(errors):.4f}"
    assert inside >= 0.95 * len(sample), f"truth inside the bounds in {inside} of {len(sample)}"


def test_small_windows_are_exact():
    """Below a few hundred users the sketch is in its exact (list) mode."""
    frames = [f"u{i}" for i in range(300)] * 2
    counter = counted(frames)
    low, high = counter.bounds()
    assert counter.count() == 300 and low <= 300 <= high <= 301


def test_size_is_fixed_whatever_the_users():
    big = counted([f"u{i}" for i in range(200_000)])
    assert big.nbytes <= (1 << DEFAULT_LG_K) + 100
    assert counted([f"v{i}" for i in range(400_000)]).nbytes == big.nbytes


def test_merge_is_the_union_and_serialisation_round_trips():
    a = [f"u{i}" for i in range(0, 30_000)]
    b = [f"u{i}" for i in range(20_000, 50_000)]
    merged = counted(a).merge(counted(b))
    low, high = merged.bounds()
    assert abs(merged.count() - 50_000) <= 3 * hll_relative_standard_error(DEFAULT_LG_K) * 50_000
    assert low <= 50_000 <= high
    restored = HllCounter.from_bytes(merged.to_bytes())
    assert (restored.count(), restored.bounds(), restored.lg_k) == (merged.count(), merged.bounds(), DEFAULT_LG_K)
