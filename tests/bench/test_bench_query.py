"""bench.query's two-year index holds what the writer itself keeps: the same windows per granularity,
with exact hashes on the same ones, when every window of the last ten days is made final."""
from __future__ import annotations

from bench.query import two_years
from uniqcount.core.counters import FrozenExactCounter
from uniqcount.core.ranges import StoredIndex
from uniqcount.core.sketches import SIZES, Keeping, StoredWindows
from uniqcount.core.userset import hashes_of
from uniqcount.core.windowset import Result

DAY = 86_400
END = 1_700_000_000 // DAY * DAY + 5 * 3600 + 7 * 60  # mid-day, mid-hour


def test_the_bench_index_keeps_what_the_writer_keeps():
    keep = Keeping({"minute": 3 * 3600, "hour": 2 * DAY, "day": 5 * DAY}, 5400, 10)
    users = FrozenExactCounter(hashes_of({"a", "b", "c"}))
    writer = StoredWindows(keep)
    for granularity, size in SIZES.items():
        writer.add(Result(granularity, start, start + size, 3, 3, True, 0, 0, counter=users)
                   for start in range((END - 10 * DAY) // size * size, END // size * size, size))
    records = writer.take()
    written = StoredIndex()
    for key, value in records:
        written.add(key, value)

    bench = two_years(records, keep, END)  # its models: the windows written

    for granularity in SIZES:
        assert sorted(bench.windows[granularity]) == sorted(written.windows[granularity]), granularity
        assert {s for s, w in bench.windows[granularity].items() if w.has_hashes} == \
            {s for s, w in written.windows[granularity].items() if w.has_hashes}, granularity
    assert len(written.windows["minute"]) == 3 * 60 and len(written.windows["day"]) == 5

