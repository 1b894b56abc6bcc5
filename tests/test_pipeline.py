"""The design card end to end: per-minute counts equal the truth, via stdin and via the real broker."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from uniqcount.config import REPO

DATA = REPO.parent / "shared" / "data"
ORDERED = DATA / "sample-ordered.jsonl.gz"


def truth_minutes(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [{"window_start": r["start"], "unique_users": r["unique"], "frames": r["frames"]}
            for r in rows if r["granularity"] == "minute"]


def as_truth(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("window_start", "unique_users", "frames")} for r in records]


def script(name: str, *args: str, stdin: bytes | None = None, env: dict | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / name), *args], input=stdin, capture_output=True,
                          cwd=REPO, env={**os.environ, **(env or {})}, timeout=timeout)


needs_samples = pytest.mark.skipif(not ORDERED.exists(), reason="../shared/data is not beside the repo")


@needs_samples
def test_stdin_counts_equal_truth():
    result = script("consumer.py", "--input", "-", stdin=gzip.decompress(ORDERED.read_bytes()))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert as_truth(records) == truth_minutes(DATA / "sample-ordered.truth.jsonl")
    first = records[0]
    assert first["granularity"] == "minute" and first["final"] is True and first["revision"] == 0
    assert first["window_end"] == first["window_start"] + 60 and first["start_iso"] == "2016-07-11T13:39:00Z"
    assert b"done: 100,000 frames" in result.stderr


def test_invalid_frames_are_counted_by_reason_and_never_crash(tmp_path):
    lines = [b'{"uid":"a","ts":60}', b"garbage", b"", b"[]", b'{"uid":1,"ts":61}', b'{"uid":"b"}',
             b"\xff\xfe\x00", b'{"uid":"b","ts":"62"}', b'{"uid":"c","ts":120}']
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = script("consumer.py", "--input", str(path))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["window_start"], r["unique_users"], r["frames"]) for r in records] == [(60, 2, 2), (120, 1, 1)]
    summary = result.stderr.decode()
    assert "invalid 5 (bad_json 2, bad_uid 1, no_ts 1, not_object 1)" in summary
    assert "1 blank lines skipped" in summary


def test_gzip_is_told_by_magic_bytes_not_by_name(tmp_path):
    path = tmp_path / "frames.txt"
    path.write_bytes(gzip.compress(b'{"uid":"a","ts":5}\n{"uid":"b","ts":6}\n'))
    result = script("consumer.py", "--input", str(path))
    assert json.loads(result.stdout)["unique_users"] == 2


def test_clear_errors_without_traceback(tmp_path):
    missing = script("consumer.py", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and missing.stderr.decode().strip() == f"error: input not found: {tmp_path / 'nope.jsonl'}"
    no_broker = script("producer.py", "--input", str(ORDERED), env={"BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert no_broker.returncode == 1 and no_broker.stderr.decode().startswith("error: no Kafka broker answers")
    assert len(no_broker.stderr.splitlines()) == 1


@needs_samples
@pytest.mark.kafka
def test_through_the_broker_counts_equal_truth(bootstrap):
    run = uuid.uuid4().hex[:8]
    env = {"BOOTSTRAP_SERVERS": bootstrap, "TOPIC": f"events-{run}", "OUTPUT_TOPIC": f"out-{run}",
           "CONSUMER_GROUP": f"group-{run}"}
    produced = script("producer.py", "--input", str(ORDERED), env=env)
    assert produced.returncode == 0, produced.stderr
    assert b"100,000 frames" in produced.stderr and b"0 not acknowledged" in produced.stderr
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr

    reader = KafkaConsumer(env["OUTPUT_TOPIC"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=5000)
    messages = list(reader)
    reader.close()
    records = [json.loads(m.value) for m in messages]
    assert [m.key.decode() for m in messages] == [f"minute:{r['window_start']}" for r in records]
    assert as_truth(records) == truth_minutes(DATA / "sample-ordered.truth.jsonl")


@pytest.mark.kafka
def test_producer_limit_and_blank_lines(bootstrap, tmp_path):
    run = uuid.uuid4().hex[:8]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"uid":"a","ts":1}\n\n  \n{"uid":"b","ts":2}\n{"uid":"c","ts":3}\n')
    env = {"BOOTSTRAP_SERVERS": bootstrap, "TOPIC": f"limit-{run}"}
    result = script("producer.py", "--input", str(path), "--limit", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert b"2 frames" in result.stderr and b"2 blank lines skipped" in result.stderr
    reader = KafkaConsumer(env["TOPIC"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=5000)
    assert [m.value for m in reader] == [b'{"uid":"a","ts":1}', b'{"uid":"b","ts":2}']
    reader.close()


def test_rate_paces_by_event_time(monkeypatch):
    """--rate 2: frames 10 s of event time apart go out 5 s apart (clock and sleep are faked)."""
    from uniqcount import producer_cli

    clock = [100.0]
    slept = []
    monkeypatch.setattr(producer_cli.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(producer_cli.time, "sleep", lambda s: (slept.append(s), clock.__setitem__(0, clock[0] + s)))
    pacer = producer_cli.Pacer(2.0)
    for frame in [b'{"uid":"a","ts":1000}', b"not json", b'{"uid":"b","ts":1010}', b'{"uid":"c","ts":1011}']:
        pacer.wait(frame)
    assert slept == [5.0, 0.5]


@pytest.mark.kafka
def test_idle_flush_then_drain_on_sigusr1(bootstrap, tmp_path):
    """A consumer that runs forever emits the open minute once idle, and drains and exits on SIGUSR1."""
    import signal

    run = uuid.uuid4().hex[:8]
    env = {"BOOTSTRAP_SERVERS": bootstrap, "TOPIC": f"idle-{run}", "OUTPUT_TOPIC": f"idle-out-{run}",
           "CONSUMER_GROUP": f"idle-{run}", "IDLE_FLUSH_SECONDS": "1", "STATUS_INTERVAL": "0"}
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"uid":"a","ts":60}\n{"uid":"b","ts":61}\n{"uid":"c","ts":130}\n')
    assert script("producer.py", "--input", str(path), env=env).returncode == 0
    consumer = subprocess.Popen([sys.executable, str(REPO / "consumer.py"), "--quiet"], cwd=REPO,
                                env={**os.environ, **env}, stderr=subprocess.PIPE)
    try:
        reader = KafkaConsumer(env["OUTPUT_TOPIC"], bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                               consumer_timeout_ms=30000)
        records = []
        for message in reader:
            records.append(json.loads(message.value))
            if len(records) == 2:
                break
        reader.close()
        assert [(r["window_start"], r["unique_users"]) for r in records] == [(60, 2), (120, 1)]
        assert consumer.poll() is None, "the idle flush must not stop the consumer"
        consumer.send_signal(signal.SIGUSR1)
        assert consumer.wait(timeout=30) == 0
        assert b"done: 3 frames" in consumer.stderr.read()
    finally:
        consumer.kill()
