"""The live page's board (core/board.py): the latest record per key, and what changed after any point,
against a replay of the same records kept by hand."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from uniqcount.core.board import Board

GRANULARITIES = ["minute", "hour", "rolling_24h"]
records = st.lists(st.tuples(st.sampled_from(GRANULARITIES), st.integers(0, 30), st.integers(0, 9) | st.none()),
                   max_size=60)


def record(granularity: str, start: int, users: int | None) -> tuple[bytes, bytes | None]:
    key = f"{granularity}:{start}".encode()
    return key, None if users is None else json.dumps({"granularity": granularity, "window_start": start,
                                                       "unique_users": users}).encode()


@settings(max_examples=200, deadline=None)
@given(before=records, after=records, log_length=st.integers(1, 200))
def test_since_sends_the_latest_record_of_every_window_changed_after_that_point(before, after, log_length):
    board, latest = Board(log_length), {}
    for g, s, users in before:
        board.apply(*record(g, s, users))
        latest[(g, s)] = record(g, s, users)[1]
    seq = board.seq
    for g, s, users in after:
        board.apply(*record(g, s, users))
        latest[(g, s)] = record(g, s, users)[1]
    live = {k: v for k, v in latest.items() if v is not None}
    for g in GRANULARITIES:
        assert board.windows(g) == [live[k] for k in sorted(k for k in live if k[0] == g)]
        assert board.windows(g, 5, 20, last=3) == [live[k] for k in sorted(k for k in live if k[0] == g
                                                                            and 5 <= k[1] < 20)][-3:]
    assert board.granularities() == {g: n for g in GRANULARITIES if (n := sum(k[0] == g for k in live))}
    changed = board.since(seq)
    applied = board.seq - seq  # a tombstone of a window never seen changes nothing
    if applied > log_length:
        assert changed is None
        return
    touched = {(g, s) for g, s, _ in after}
    assert changed is not None and sorted(changed) == sorted(live[k] for k in touched if k in live)
    assert board.since(board.seq) == []


def test_a_key_or_value_that_is_no_window_is_counted_and_left_out():
    board = Board()
    assert not board.apply(b"minute", b"{}") and not board.apply(None, b"{}")
    assert not board.apply(b"minute:60", b"[1]") and not board.apply(b"minute:60", b"{not json")
    assert not board.apply(b"minute:x", b"{}") and not board.apply(b"\xff:1", b"{}")
    assert board.unreadable == 6 and board.seq == 0 and board.granularities() == {}
