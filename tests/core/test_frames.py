"""The parser: only top-level uid/ts count, whatever the nesting, order and padding; bad frames get a reason."""
from __future__ import annotations

import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import LATE
from uniqcount.core.frames import MAX_TS, InvalidFrame, parse_frame, parse_frames
from uniqcount.core.nesting import NotJson, NotObject, top_level


def reason(data: bytes) -> str:
    with pytest.raises(InvalidFrame) as caught:
        parse_frame(data)
    return caught.value.reason


def test_nested_uid_and_ts_before_the_top_level_ones_are_ignored():
    frame = b'{"a":{"uid":"nested","ts":"x","b":{"uid":1}},"ts":1468244384,"x":[{"uid":"n2"}],"uid":"top"}'
    assert parse_frame(frame) == ("top", 1468244384)


def test_key_order_repeated_keys_escapes_and_utf8():
    frame = '{"ts":5,"k":"a\\"uid\\":\\"fake\\"","k":[],"uid":"Свобода","k":{"ts":9}}'.encode()
    assert parse_frame(frame) == ("Свобода", 5)


@pytest.mark.parametrize("ts,expected", [("1468244384", 1468244384), (" 12 ", 12), (1468244384.9, 1468244384),
                                         ("1.5e3", 1500), (0, 0)])
def test_ts_numbers_and_numeric_strings(ts, expected):
    assert parse_frame(json.dumps({"uid": "u", "ts": ts}).encode()) == ("u", expected)


INVALID = [
    (b'{"uid":"u","ts":1', "bad_json"),
    (b'{"uid":"u" "ts":1}', "bad_json"),
    (b"", "bad_json"),
    (b"\x00\xff\xfe\x01binary junk", "bad_json"),
    (b'{"uid":"\xff","ts":1}', "bad_json"),  # invalid UTF-8
    (b'{"uid":"a\xc3","ts":1}', "bad_json"),  # truncated UTF-8
    (b"[1,2]", "not_object"),
    (b'"just a string"', "not_object"),
    (b"42", "not_object"),
    (b"null", "not_object"),
    (b'{"ts":1}', "no_uid"),
    (b'{"uid":{"ts":1},"ts":1}', "bad_uid"),
    (b'{"uid":7,"ts":1}', "bad_uid"),
    (b'{"uid":null,"ts":1}', "bad_uid"),
    (b'{"uid":"","ts":1}', "bad_uid"),
    (b'{"uid":"u"}', "no_ts"),
    (b'{"uid":"u","x":{"ts":1}}', "no_ts"),
    (b'{"uid":"u","ts":"soon"}', "bad_ts"),
    (b'{"uid":"u","ts":"1_000"}', "bad_ts"),
    (b'{"uid":"u","ts":true}', "bad_ts"),
    (b'{"uid":"u","ts":null}', "bad_ts"),
    (b'{"uid":"u","ts":[1]}', "bad_ts"),
    (b'{"uid":"u","ts":-1}', "bad_ts"),
    (b'{"uid":"u","ts":"NaN"}', "bad_ts"),
    (b'{"uid":"u","ts":1e300}', "bad_ts"),
    (f'{{"uid":"u","ts":{MAX_TS}}}'.encode(), "bad_ts"),
]


@pytest.mark.parametrize("data,expected", INVALID)
def test_invalid_frames_have_a_reason(data, expected):
    assert reason(data) == expected


def test_one_megabyte_lines():
    padding = "x" * (1 << 20)
    assert parse_frame(json.dumps({"pad": padding, "uid": "big", "ts": 3}).encode()) == ("big", 3)
    assert reason(b'{"pad":"' + padding.encode() + b'"') == "bad_json"


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["uid", "ts", "a", "б", 'q"'] ), inner, max_size=3), max_leaves=12)


@given(uid=st.text(min_size=1), ts=st.integers(0, 2**33) | st.integers(0, 2**33).map(str),
       before=st.dictionaries(st.text(max_size=5).filter(lambda k: k not in ("uid", "ts")), json_value, max_size=4),
       after=st.dictionaries(st.text(max_size=5).filter(lambda k: k not in ("uid", "ts")), json_value, max_size=4),
       uid_first=st.booleans())
def test_parser_agrees_with_a_full_json_parse(uid, ts, before, after, uid_first):
    pair = [("uid", uid), ("ts", ts)] if uid_first else [("ts", ts), ("uid", uid)]
    frame = json.dumps(dict([*before.items(), *pair, *after.items()]), ensure_ascii=False).encode()
    full = json.loads(frame)
    assert parse_frame(frame) == (full["uid"], int(full["ts"]))


def one_by_one(values: list[bytes]) -> tuple[list, list]:
    pairs, bad = [], []
    for index, value in enumerate(values):
        try:
            pairs.append(parse_frame(value))
        except InvalidFrame as exc:
            bad.append((index, exc.reason))
    return pairs, bad


usual = st.builds(lambda uid, ts: json.dumps({"n": {"uid": 1}, "uid": uid, "ts": ts}).encode(),
                  st.text(min_size=1, max_size=5), st.integers(0, MAX_TS - 1))
unusual = st.builds(lambda uid, ts: json.dumps({"ts": ts, "uid": uid}).encode(),
                    st.text(min_size=1, max_size=5), st.integers(0, 2**33).map(str) | st.floats(0, 2**33))


@given(st.lists(usual | unusual | st.sampled_from([data for data, _ in INVALID]), max_size=40))
def test_a_batch_parses_as_its_frames_one_by_one(values):
    assert parse_frames(values) == one_by_one(values)


# --- hostile bytes: the parser never raises, and every frame gets exactly one verdict -----------

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", 300))  # more for a long hunt: FUZZ_EXAMPLES=10000
REAL = [line for line in gzip.open(LATE).read().splitlines()[:200]] if LATE.exists() else \
    [json.dumps({"n": {"uid": 1, "ts": "x"}, "uid": "u", "pad": "Свобода\\n", "ts": 1468244384}).encode()]


def verdict(data: bytes) -> tuple[str, object]:
    try:
        return "counted", parse_frame(data)
    except InvalidFrame as exc:
        return "dead", exc.reason


def one_verdict_each(values: list[bytes]) -> None:
    pairs, bad = parse_frames(values)
    indexes = [index for index, _ in bad]
    assert len(set(indexes)) == len(indexes) and len(pairs) + len(bad) == len(values)
    assert all(0 <= index < len(values) for index in indexes)


def mutated(frame: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """`frame` with each (position, bytes removed, bytes put in) applied in turn."""
    for position, cut, inserted in edits:
        at = position % (len(frame) + 1)
        frame = frame[:at] + inserted + frame[at + cut:]
    return frame


HOSTILE_PIECES = [b"[" * 1500, b"{" * 3, b'{"a":' * 1200, b"]" * 3, b"}", b'"', b"\\", b"\x00", b"\xff", b"\xc3",
                  b"\xef\xbb\xbf", b"\r\n", b"9" * 5000, b"1e400", b"-", b'"uid":', b'"ts":', b",", b":", b"null"]
# indexes, not the pieces and frames themselves: hypothesis would print them whole in its warnings
edit = st.tuples(st.integers(0, 1 << 16), st.integers(0, 8),
                 st.binary(max_size=8) | st.integers(0, len(HOSTILE_PIECES) - 1).map(HOSTILE_PIECES.__getitem__))
real = st.integers(0, len(REAL) - 1).map(REAL.__getitem__)


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_arbitrary_bytes_never_raise_out_of_the_parser(values):
    one_verdict_each(values)


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.tuples(real, st.lists(edit, max_size=4)), min_size=1, max_size=8))
def test_mutated_real_frames_never_raise_and_get_one_verdict(cases):
    values = [mutated(frame, edits) for frame, edits in cases]
    one_verdict_each(values)
    assert parse_frames(values) == one_by_one(values)


def deep(value: bytes, depth: int) -> bytes:
    return b"[" * depth + value + b"]" * depth


@pytest.mark.parametrize("depth", [999, 1000, 5000, 200_000])
def test_deep_nesting_in_another_key_is_counted_by_the_top_level(depth):
    frames = [b'{"uid":"x","ts":1468244400,"x":' + deep(b"1", depth) + b"}",
              b'{"x":' + b'{"uid":' * depth + b"1" + b"}" * depth + b',"ts":"1468244400","uid":"x"}']
    assert parse_frames(frames) == ([("x", 1468244400)] * 2, [])


@pytest.mark.parametrize("data,expected", [
    (deep(b"", 5000), "not_object"),
    (b'{"uid":"x","ts":1,"a":' + deep(b"", 5000), "bad_json"),  # never closed
    (b'{"uid":"x","ts":1,"a":' + deep(b"", 5000) + b"} 7", "bad_json"),  # more after the object
    (b'{"uid":"x","ts":1,"a":' + deep(b"01", 5000) + b"}", "bad_json"),  # no JSON number
    (b'{"uid":' + deep(b"", 5000) + b',"ts":1}', "bad_uid"),
    (b'{"uid":"x","ts":' + deep(b"", 5000) + b"}", "bad_ts"),
    (b'{"ts":1,"a":' + deep(b"", 5000) + b"}", "no_uid"),
    (b'{"uid":"\xff","ts":1,"a":' + deep(b"", 5000) + b"}", "bad_json"),
])
def test_deep_frames_get_the_reason_a_shallow_one_would(data, expected):
    assert reason(data) == expected


@pytest.mark.parametrize("data", [b'{"uid":"x","ts":' + b"9" * 5000 + b"}", b'{"uid":"x","ts":1e400}',
                                  b'{"uid":"x","ts":-1e400}', b'{"uid":"x","ts":"\\u0661\\u0662"}',
                                  b'{"uid":"x","ts":"\xd9\xa1"}', b'{"uid":"x","ts":"' + b"9" * 5000 + b'"}'])
def test_numbers_out_of_any_range_are_bad_ts(data):
    assert reason(data) == "bad_ts"


def test_a_number_out_of_range_as_uid_is_bad_uid():
    assert reason(b'{"uid":1e400,"ts":1}') == "bad_uid"


@settings(max_examples=FUZZ_EXAMPLES)
@given(st.lists(st.tuples(real, st.lists(edit.filter(lambda e: len(e[2]) < 100), max_size=3)),
                min_size=1, max_size=4))
def test_the_deep_path_agrees_with_msgspec_on_frames_msgspec_can_read(cases):
    """nesting.top_level checks the grammar on its own: held against msgspec wherever msgspec can go."""
    for frame, edits in cases:
        data = mutated(frame, edits)
        try:
            via_scanner = verdict(top_level(data))
        except NotObject:
            via_scanner = ("dead", "not_object")
        except NotJson:
            via_scanner = ("dead", "bad_json")
        assert via_scanner == verdict(data), data
