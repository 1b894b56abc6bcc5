"""A corpus of hostile frames, through stdin and through the broker: nothing stops the consumer, and
frames in = counted + dead-lettered, each frame with the verdict written beside it here."""
from __future__ import annotations

import json
import re

import pytest

from tests.helpers import VIA, run_consumer

TS = 1468244400


def frame(**fields) -> bytes:
    return json.dumps(fields).encode()


def deep(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    return opening * depth + closing * depth


# (name, bytes, reason or None for counted). No raw newline: stdin is split on them.
CORPUS = [
    ("plain", frame(uid="a", ts=TS), None),
    ("deep array elsewhere", b'{"uid":"b","ts":%d,"x":%s}' % (TS, deep(5000)), None),
    ("deep objects elsewhere", b'{"x":' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b',"uid":"c","ts":%d}' % TS, None),
    ("deep mix before uid/ts", b'{"x":' + b'[{"k":' * 2000 + b"1" + b"}]" * 2000 + b',"ts":"%d","uid":"d"}' % TS, None),
    ("deep mix, a value missing", b'{"x":' + b'[{"k":' * 2000 + b"}]" * 2000 + b',"ts":"%d","uid":"d"}' % TS, "bad_json"),
    ("deep top-level array", deep(10000), "not_object"),
    ("deep and never closed", b'{"uid":"e","ts":%d,"x":' % TS + b"[" * 5000, "bad_json"),
    ("deep uid", b'{"uid":%s,"ts":%d}' % (deep(3000), TS), "bad_uid"),
    ("deep ts", b'{"uid":"f","ts":%s}' % deep(3000), "bad_ts"),
    ("5000-digit ts", b'{"uid":"g","ts":' + b"9" * 5000 + b"}", "bad_ts"),
    ("ts 1e400", b'{"uid":"h","ts":1e400}', "bad_ts"),
    ("ts -1e400", b'{"uid":"h","ts":-1e400}', "bad_ts"),
    ("ts string of 5000 digits", b'{"uid":"h","ts":"' + b"9" * 5000 + b'"}', "bad_ts"),
    ("ts in Arabic-Indic digits", '{"uid":"h","ts":"١٤٦٨٢٤٤٤٠٠"}'.encode(), "bad_ts"),
    ("uid 1e400", b'{"uid":1e400,"ts":%d}' % TS, "bad_uid"),
    ("invalid UTF-8 in uid", b'{"uid":"\xff\xfe","ts":%d}' % TS, "bad_json"),
    ("truncated UTF-8 in uid", b'{"uid":"a\xc3","ts":%d}' % TS, "bad_json"),
    ("invalid UTF-8 in ts", b'{"uid":"i","ts":"\xff"}', "bad_json"),
    ("invalid UTF-8 in another key", b'{"uid":"j","ts":%d,"x":"\xff\xfe\xfd"}' % TS, None),
    ("invalid UTF-8 as a key", b'{"\xff":1,"uid":"k","ts":%d}' % TS, None),
    ("invalid UTF-8 outside strings", b'{"uid":"k","ts":%d}\xff' % TS, "bad_json"),
    ("NUL in uid", b'{"uid":"l\\u0000m","ts":%d}' % TS, None),
    ("raw NUL in a string", b'{"uid":"l\x00m","ts":%d}' % TS, "bad_json"),
    ("NUL after the object", b'{"uid":"l","ts":%d}\x00' % TS, "bad_json"),
    ("NUL bytes only", b"\x00" * 64, "bad_json"),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"uid":"m","ts":%d}' % TS, "bad_json"),
    ("UTF-16 BOM", b'\xff\xfe{\x00"\x00', "bad_json"),
    ("CR at the end", b'{"uid":"n","ts":%d}\r' % TS, None),
    ("duplicate uid: the last one counts", b'{"uid":"o1","ts":%d,"uid":"o2"}' % TS, None),
    ("duplicate ts", b'{"uid":"p","ts":"x","ts":%d}' % TS, None),
    ("1 MB of padding", frame(uid="q", ts=TS, pad="x" * (1 << 20)), None),
    ("1 MB of padding, unclosed", b'{"uid":"q","ts":%d,"pad":"' % TS + b"x" * (1 << 20), "bad_json"),
    ("binary junk", bytes(range(256)).replace(b"\n", b""), "bad_json"),
    ("a lone number", b"42", "not_object"),
    ("two objects on one line", b'{"uid":"r","ts":%d} {"uid":"s","ts":%d}' % (TS, TS), "bad_json"),
    ("empty uid", frame(uid="", ts=TS), "bad_uid"),
    ("no uid", frame(ts=TS), "no_uid"),
    ("no ts", frame(uid="t"), "no_ts"),
    ("ts true", frame(uid="t", ts=True), "bad_ts"),
    ("ts negative", frame(uid="t", ts=-1), "bad_ts"),
]


@pytest.mark.parametrize("via", VIA)
def test_hostile_frames_are_counted_or_dead_lettered_never_a_crash(via, request, tmp_path):
    data = b"\n".join(body for _, body, _ in CORPUS) + b"\n"
    records, dead, stderr = run_consumer(via, data, "--granularities", "minute", request=request, tmp_path=tmp_path)
    expected_dead = sorted(reason for _, _, reason in CORPUS if reason)
    counted = sum(1 for *_, reason in CORPUS if reason is None)
    assert sorted(reason.decode() if isinstance(reason, bytes) else reason for reason, _ in dead) == expected_dead
    assert sum(r["frames"] for r in records if r["final"]) == counted
    match = re.search(r"frames in ([\d,]+) = counted ([\d,]+) \(late \d+\) \+ dead-lettered ([\d,]+)", stderr)
    assert match, stderr
    assert [int(n.replace(",", "")) for n in match.groups()] == [len(CORPUS), counted, len(expected_dead)]
    assert "Traceback" not in stderr
