"""The generator reproduces the original format, knobs and traps."""
from __future__ import annotations

import json
import re
from collections import Counter

from uniqcount.core.frames import parse_frame
from uniqcount.devtools.generate import START_TS, frames


def sample(**knobs):
    options = dict(count=3000, rate=100, users=500, size_limit=1024, max_delay=0, delayed_percent=0,
                   string_ts_percent=0, seed=7)
    options.update(knobs)
    return list(frames(**options))


def naive_uid(frame: bytes) -> str | None:
    """The common published shortcut: the first "uid":"..." in the text."""
    match = re.search(rb'"uid":"([^"]*)"', frame)
    return match.group(1).decode() if match else None


def test_format_and_knobs():
    generated = sample()
    parsed = [json.loads(f) for f in generated]
    assert all(isinstance(p["uid"], str) and len(p["uid"]) == 19 for p in parsed)
    assert [p["ts"] for p in parsed] == [START_TS + i // 100 for i in range(3000)]
    sparse = [json.loads(f)["ts"] for f in sample(count=5, rate=1, interval=20)]
    assert sparse == [START_TS + 20 * i for i in range(5)]
    assert len({p["uid"] for p in parsed}) <= 500
    sizes = [len(f) for f in generated]
    assert min(sizes) >= 1024 * 0.85 and sum(sizes) / len(sizes) < 1024 * 1.3
    assert sample() == generated, "same seed, same bytes"
    assert sample(seed=8) != generated


def test_delays_and_string_timestamps():
    parsed = [json.loads(f) for f in sample(max_delay=10, delayed_percent=20, string_ts_percent=10)]
    delays = [START_TS + i // 100 - int(p["ts"]) for i, p in enumerate(parsed)]
    assert 0.15 < sum(d > 0 for d in delays) / len(delays) < 0.25
    assert max(delays) <= 10 and min(delays) >= 0
    assert 0.05 < sum(isinstance(p["ts"], str) for p in parsed) / len(parsed) < 0.15


def test_every_trap_is_there():
    generated = sample(count=5000)
    texts = [f.decode() for f in generated]
    first_keys = Counter(next(iter(json.loads(t))) for t in texts)
    assert first_keys["uid"] and first_keys["ts"] and sum(first_keys.values()) > first_keys["uid"] + first_keys["ts"]
    assert any(t.count('"uid":') > 1 for t in texts), "nested uid keys"
    assert any(re.search(r'"ts":"[^0-9]', t) for t in texts), "nested ts with non-numeric values"
    assert any(len(re.findall(r'[{,]"(\w+)":', t)) > len(set(re.findall(r'[{,]"(\w+)":', t))) for t in texts)
    assert any(re.search("[а-яА-Я]", t) for t in texts), "Cyrillic UTF-8"
    for escape in ('\\"', "\\\\", "\\n", "\\t", "\\f", "\\r"):
        assert any(escape in t for t in texts), escape
    values = [v for t in texts for v in json.loads(t).values()]
    for kind in (bool, float, int, list, dict):
        assert any(type(v) is kind for v in values), kind


def test_the_naive_text_scan_goes_wrong_and_the_parser_does_not():
    generated = sample(count=5000)
    truth = [json.loads(f)["uid"] for f in generated]
    naive_wrong = sum(naive_uid(f) != uid for f, uid in zip(generated, truth))
    assert naive_wrong / len(generated) > 0.005
    assert [parse_frame(f)[0] for f in generated] == truth
