"""The pure core: parsing, calendar, counters, event clock, windows, the per-partition counter, the merge. No I/O, no clock, no Kafka (tests/core/test_layers.py)."""
