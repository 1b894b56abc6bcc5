"""The C scan of a batch (native/frames.c, through frames.scan_values) against the pure-Python path
(msgspec, frame by frame, uids hashed by userset.uid_hash): the same users, times and verdicts for
any bytes. The scan may leave any frame to the Python path (unsure), never give another answer."""
from __future__ import annotations

import gzip
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.test_frames import HOSTILE_PIECES, INVALID, REAL, edit, json_value, mutated
from tests.helpers import LATE
from uniqcount.core import frames
from uniqcount.core.frames import MAX_TS, Parsed, parse_frames
from uniqcount.core.userset import hashes_of

native = pytest.importorskip("uniqcount_native", reason="native/ is not built (pip install ./native)")


def python_path(values: list[bytes]) -> Parsed:
    pairs, bad = parse_frames(values)
    return Parsed(list(hashes_of(uid for uid, _ in pairs)), [ts for _, ts in pairs], bad)


def agree(values: list[bytes]) -> None:
    scanned = frames.scan_values(values)
    assert (list(scanned.users), list(scanned.times), scanned.bad) == python_path(values)


def sure(value: bytes) -> bool:
    return native.scan_frames([value])[2] == []


def test_the_compiled_scan_is_the_one_in_use_in_ci():
    if os.environ.get("CI"):
        assert frames.scan_frames is native.scan_frames


def test_the_samples_frames_are_all_read_by_the_scan():
    """It earns its place only if the usual frame needs no second parse."""
    lines = gzip.open(LATE).read().splitlines()[:2000]
    hashes, times, unsure = native.scan_frames(lines)
    assert unsure == []
    assert list(memoryview(times).cast("q")) == [json.loads(line)["ts"] for line in lines]
    assert list(memoryview(hashes).cast("Q")) == list(hashes_of(json.loads(line)["uid"] for line in lines))


@pytest.mark.parametrize("data,expected", INVALID)
def test_invalid_frames_are_left_to_the_python_path(data, expected):
    assert not sure(data)
    agree([data])


@pytest.mark.parametrize("value", [
    b'{"uid":"a","ts":1,"uid":"b"}', b'{"u\\u0069d":"a","ts":1}', b'{"uid":"a\\u0062","ts":1}',
    b'{"uid":"a","ts":" 12 "}', b'{"uid":"a","ts":1.0}', b'{"uid":"a","ts":-0}', b'{"uid":"a","ts":1,"x":"\\ud800"}',
    b'{"uid":"a","ts":1,"x":"\\ud800\\udc00"}', b"\xef\xbb\xbf{}", b'{"uid":"a","ts":1,"x":' + b"[" * 1025 + b"]" * 1025 + b"}",
])
def test_what_the_scan_is_unsure_of(value):
    """Repeated keys, escapes that may spell uid or ts, unusual ts, surrogates, deep nesting."""
    assert not sure(value)
    agree([value])


@pytest.mark.parametrize("value", [
    b' {"x":{"uid":1,"ts":"no"},"ts":"0012","uid":"\xd0\xaf\xf0\x9f\x99\x82"}\r\n', b'{"uid":"a","ts":1,"x":"\\u00e9\\/\\b"}',
    b'{"uid":"a","ts":1,"x":"\xff"}', b'{"uid":"a","ts":0,"x":[1e999,-0.5E+3,true,false,null,{},[]]}',
    f'{{"uid":"a","ts":{MAX_TS - 1}}}'.encode(),
])
def test_what_the_scan_reads_itself(value):
    """Nested uid/ts, digit strings, UTF-8 uids, escapes and bytes msgspec skips, every JSON value."""
    assert sure(value)
    agree([value])


@pytest.mark.parametrize("lead", range(0, 34))
def test_runs_of_backslashes_across_the_16_byte_steps(lead):
    """Strings are searched 16 bytes a step for their next quote, backslash or control byte: runs of
    backslashes of every length ending at every offset, escaping a quote (the string goes on) or not
    (it ends there)."""
    values = []
    for run in range(1, 40):
        text = "x" * lead + "\\" * run  # `run` backslashes: an odd run escapes the byte after it
        values += [f'{{"uid":"a","ts":1,"s":"{text}"}}'.encode(),
                   f'{{"uid":"a","ts":1,"s":"{text}\\"}}'.encode(),
                   f'{{"uid":"a","ts":1,"s":"{text}\\"","t":"y"}}'.encode(),
                   f'{{"s":"{text}n{"y" * 20}\\q","uid":"a","ts":1}}'.encode()]  # a bad escape past the first step
    agree(values)
    assert [sure(value) for value in values] == [valid_json(value) for value in values]  # plain uid/ts: sure iff JSON


def valid_json(value: bytes) -> bool:
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


WHITESPACE = st.sampled_from(["", " ", "\n", "\t ", "\r\n"])


@st.composite
def json_text(draw: st.DrawFn, value: object) -> str:
    """`value` as JSON text, with whitespace and the escapes of strings chosen at random."""
    space = draw(WHITESPACE)
    if isinstance(value, dict):
        members = [f"{json_text_of(draw, key)}{space}:{draw(WHITESPACE)}{draw(json_text(item))}"
                   for key, item in value.items()]
        return "{" + space + ("," + draw(WHITESPACE)).join(members) + draw(WHITESPACE) + "}"
    if isinstance(value, list):
        return "[" + space + ",".join(draw(json_text(item)) for item in value) + "]"
    if isinstance(value, str):
        return json_text_of(draw, value)
    return json.dumps(value)


def json_text_of(draw: st.DrawFn, text: str) -> str:
    return json.dumps(text, ensure_ascii=draw(st.booleans()))


uids = st.text(min_size=0, max_size=6) | st.integers() | st.none()
stamps = st.integers(-2, 2**40) | st.integers(0, 2**35).map(str) | st.floats(0, 2**35) | st.sampled_from(["", "x", " 7"])
KEYS = ['"uid"', '"ts"', '"a"', '"б"', '"u\\u0069d"', '"t\\u0073"']  # JSON text: the last two spell uid and ts
members = st.lists(st.tuples(st.sampled_from(KEYS), json_value | uids | stamps), max_size=6)


@st.composite
def frame(draw: st.DrawFn) -> bytes:
    """An object of members, top-level uid/ts included or not, maybe repeated, maybe spelled with an escape."""
    parts = draw(members)
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), ('"uid"', draw(uids)))
    if draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), ('"ts"', draw(stamps)))
    return ("{" + ",".join(f"{key}:{draw(json_text(value))}" for key, value in parts) + "}").encode()


@settings(max_examples=300)
@given(st.lists(frame(), max_size=12))
def test_generated_frames_agree(values):
    agree(values)


@settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 300)))
@given(st.lists(st.tuples(st.integers(0, len(REAL) - 1).map(REAL.__getitem__), st.lists(edit, max_size=4)),
                min_size=1, max_size=8))
def test_mutated_real_frames_agree(cases):
    agree([mutated(value, edits) for value, edits in cases])


@given(st.lists(st.binary(max_size=64) | st.sampled_from(HOSTILE_PIECES), max_size=20))
def test_arbitrary_bytes_agree(values):
    agree(values)
