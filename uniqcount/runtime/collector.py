"""Python's cyclic garbage collector, set for counting (consumer.py, both sources).

A counter holds its users as millions of ints in a few big sets (open minutes, hours, days), and
each full collection walks every one of them; by default one comes every few batches, because each
batch allocates thousands of short-lived container objects (records, views) that survive a young
collection or two. Counting makes almost no reference cycles (refcounting frees the rest), so young
collections are made rare and what start-up built is frozen out of them. Measured on the canonical
topic (docs/PERFORMANCE.md, "The floors"): 1.12x the consumer, and no higher peak memory."""
from __future__ import annotations

import gc

YOUNG = 100_000  # allocations between young collections (Python's default: 700)
OLDER = (50, 100)  # young collections per middle one, middle ones per full one (default: 10, 10)


def set_for_counting() -> None:
    gc.freeze()
    gc.set_threshold(YOUNG, *OLDER)
