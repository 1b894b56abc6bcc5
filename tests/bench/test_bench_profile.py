"""The profile splitter: each main-thread sample goes to the stage of its innermost named frame."""
from __future__ import annotations

from bench.profile import split

RAW = """\
thread (1): MainThread;<module> (consumer.py:8);process (uniqcount/runtime/counting.py:30);parse_frames (uniqcount/core/frames.py:92) 5
thread (1): MainThread;take (uniqcount/kafka_client/record_batches.py:120);zstd_decode (kafka/codec.py:325) 3
thread (1): MainThread;poll (kafka/consumer/group.py:827);take (uniqcount/kafka_client/record_batches.py:120) 2
thread (1): MainThread;<module> (consumer.py:8) 1
thread (7): kafka-io;select (selectors.py:468) 4
"""


def test_innermost_stage_wins_and_threads_are_apart():
    main, threads, total = split(RAW)
    assert total == 15
    assert main == {"JSON parsing (uid/ts)": 5, "zstd/lz4/gzip: inflating (consumer) or compressing (producer)": 3,
                    "Kafka record batches: decoding (consumer) or building (producer)": 2,
                    "other (our loop, startup)": 1}
    assert threads == {"kafka-io": 4}
