"""The parser: only top-level uid/ts count, whatever the nesting, order and padding; bad frames get a reason."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from uniqcount.frames import MAX_TS, InvalidFrame, parse_frame, parse_frames


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
