"""The design card end to end: per-minute counts equal the truth, via stdin and via the real broker."""
from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import (
    ORDERED,
    VIA,
    as_truth,
    follow,
    kafka_env,
    needs_samples,
    of,
    produce,
    run_consumer,
    script,
    start_consumer,
    truth_minutes,
)
from uniqcount import REPO
from uniqcount.cli import producer as producer_cli
from uniqcount.kafka_client.kafka_io import read_topic


@needs_samples
def test_stdin_counts_equal_truth():
    result = script("consumer.py", "--input", "-", stdin=gzip.decompress(ORDERED.read_bytes()))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert as_truth(of(records)) == truth_minutes(ORDERED)
    first = of(records)[0]
    assert first["granularity"] == "minute" and first["final"] is True and first["revision"] == 0
    assert first["window_end"] == first["window_start"] + 60 and first["start_iso"] == "2016-07-11T13:39:00Z"
    assert b"done: 100,000 frames" in result.stderr


def test_invalid_frames_are_dead_lettered_by_reason_and_never_crash(tmp_path):
    lines = [b'{"uid":"a","ts":60}', b"garbage", b"", b"[]", b'{"uid":1,"ts":61}', b'{"uid":"b"}',
             b"\xff\xfe\x00", b'{"uid":"b","ts":"62"}', b'{"uid":"c","ts":120}']
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    dlq = tmp_path / "dead.tsv"
    result = script("consumer.py", "--input", str(path), "--dlq", str(dlq))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["window_start"], r["unique_users"], r["frames"]) for r in of(records)] == [(60, 2, 2), (120, 1, 1)]
    summary = result.stderr.decode()
    assert ("frames in 8 = counted 3 (late 0) + dead-lettered 5 (bad_json 2, bad_uid 1, no_ts 1, not_object 1)"
            in summary)
    assert "1 blank lines skipped" in summary
    assert [line.split(b"\t", 1) for line in dlq.read_bytes().splitlines()] == [
        [b"bad_json", b"garbage"], [b"not_object", b"[]"], [b"bad_uid", b'{"uid":1,"ts":61}'],
        [b"no_ts", b'{"uid":"b"}'], [b"bad_json", b"\xff\xfe\x00"]]


def test_gzip_is_told_by_magic_bytes_not_by_name(tmp_path):
    path = tmp_path / "frames.txt"
    path.write_bytes(gzip.compress(b'{"uid":"a","ts":5}\n{"uid":"b","ts":6}\n'))
    result = script("consumer.py", "--input", str(path))
    assert json.loads(result.stdout.splitlines()[0])["unique_users"] == 2


def test_a_truncated_gzip_is_a_one_line_error(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"uid":"a","ts":5}\n' * 50_000)[:2000])
    result = script("consumer.py", "--input", str(path), "--quiet")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1].startswith(f"error: {path}: unreadable input")


def test_clear_errors_without_traceback(tmp_path):
    missing = script("consumer.py", "--input", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and missing.stderr.decode().strip() == f"error: input not found: {tmp_path / 'nope.jsonl'}"
    no_broker = script("producer.py", "--input", str(ORDERED), env={"BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert no_broker.returncode == 1 and no_broker.stderr.decode().startswith("error: no Kafka broker answers")
    assert len(no_broker.stderr.splitlines()) == 1


@needs_samples
@pytest.mark.kafka
def test_through_the_broker_counts_equal_truth(bootstrap):
    env = kafka_env(bootstrap)
    produced = script("producer.py", "--input", str(ORDERED), env=env)
    assert produced.returncode == 0, produced.stderr
    assert b"100,000 frames" in produced.stderr and b"0 not acknowledged" in produced.stderr
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr

    messages = read_topic(bootstrap, env["OUTPUT_TOPIC"])
    records = [json.loads(m.value) for m in messages]
    assert [m.key.decode() for m in messages] == [f"{r['granularity']}:{r['window_start']}" for r in records]
    assert as_truth(of(records)) == truth_minutes(ORDERED)


@pytest.mark.kafka
def test_producer_limit_and_blank_lines(bootstrap, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"uid":"a","ts":1}\n\n  \n{"uid":"b","ts":2}\n{"uid":"c","ts":3}\n')
    env = kafka_env(bootstrap)
    result = script("producer.py", "--input", str(path), "--limit", "2", env=env)
    assert result.returncode == 0, result.stderr
    assert b"2 frames" in result.stderr and b"2 blank lines skipped" in result.stderr
    assert [m.value for m in read_topic(bootstrap, env["TOPIC"])] == [b'{"uid":"a","ts":1}', b'{"uid":"b","ts":2}']


def test_rate_paces_by_event_time(monkeypatch):
    """--rate 2: frames 10 s of event time apart go out 5 s apart, frames due together go together
    (clock and sleep are faked: the runs are taken at the clock they were yielded at)."""
    clock = [100.0]
    slept = []
    monkeypatch.setattr(producer_cli.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(producer_cli.time, "sleep", lambda s: (slept.append(s), clock.__setitem__(0, clock[0] + s)))
    pacer = producer_cli.Pacer(2.0)
    a, bad, b, b2, c = (b'{"uid":"a","ts":1000}', b"not json", b'{"uid":"b","ts":1010}', b'{"uid":"b","ts":1010}',
                        b'{"uid":"c","ts":1011}')
    frames = [a, bad, b, b2, c]
    runs = [(clock[0], frames[run]) for run in pacer.runs(frames)]
    assert slept == [5.0, 0.5]
    assert runs == [(100.0, [a, bad]), (105.0, [b, b2]), (105.5, [c])]


@pytest.mark.kafka
def test_a_quiet_stream_publishes_its_open_minute_a_frame_revises_it_then_drains_on_sigusr1(bootstrap, tmp_path):
    """Caught up and quiet for IDLE_FLUSH_SECONDS, the open minute (120, watermark 125 after the
    frame at 130, lateness 5) is final at once, not 55 s later when the wall clock would bring event
    time to its end (the reader gives up after 30 s without a record). A frame that comes after for
    that minute is counted, not too late, and revises it; the consumer keeps running, and drains and
    exits on SIGUSR1."""
    env = kafka_env(bootstrap, IDLE_FLUSH_SECONDS="1", STATUS_INTERVAL="0", GRANULARITIES="minute")
    produce(env, tmp_path / "in.jsonl", b'{"uid":"a","ts":60}\n{"uid":"b","ts":61}\n{"uid":"c","ts":130}\n')
    consumer = start_consumer(env, stderr=subprocess.PIPE)
    try:
        records = [r for _, r in follow(bootstrap, env["OUTPUT_TOPIC"], 2)]
        assert [(r["window_start"], r["unique_users"], r["revision"]) for r in records] == [(60, 2, 0), (120, 1, 0)]
        produce(env, tmp_path / "more.jsonl", b'{"uid":"d","ts":150}\n')
        records = [r for _, r in follow(bootstrap, env["OUTPUT_TOPIC"], 3)]
        assert (records[2]["window_start"], records[2]["unique_users"], records[2]["revision"]) == (120, 2, 1)
        assert consumer.poll() is None, "going quiet must not stop the consumer"
        consumer.send_signal(signal.SIGUSR1)
        assert consumer.wait(timeout=30) == 0
        assert b"done: 4 frames" in consumer.stderr.read()
    finally:
        consumer.kill()


ISSUE_EXAMPLE = b'{"uid":"a","ts":1468245530}\n{"uid":"b","ts":1468245590}\n{"uid":"c","ts":1468245610}\n'


@pytest.mark.parametrize("via", VIA)
def test_at_the_end_every_window_is_final_and_the_first_frame_is_not_late(via, request, tmp_path):
    """13:58:50, 13:59:50, 14:00:10: the 14:00 hour (opened by the last minute) gets its final record,
    and the first frame is no late frame of 13:58."""
    records, dead, _ = run_consumer(via, ISSUE_EXAMPLE, "--granularities", "minute,hour",
                                    request=request, tmp_path=tmp_path)
    last = {(r["granularity"], r["window_start"]): r for r in records}
    assert {key: (r["unique_users"], r["final"], r["revision"], r["late_frames"]) for key, r in last.items()} == {
        ("minute", 1468245480): (1, True, 0, 0), ("minute", 1468245540): (1, True, 0, 0),
        ("minute", 1468245600): (1, True, 0, 0), ("hour", 1468242000): (2, True, 0, 0),
        ("hour", 1468245600): (1, True, 0, 0)}
    assert dead == []


def test_the_scripts_run_with_the_project_venv_from_another_python():
    """As the README shows them, `./consumer.py` with a Python that has not the packages (-S: no
    site-packages) runs again with .venv instead of failing with ModuleNotFoundError."""
    base = Path(sys.base_prefix) / "bin" / "python3"
    for name in ("consumer.py", "producer.py"):
        result = subprocess.run([str(base), "-S", name, "--help"], cwd=REPO, capture_output=True)
        assert result.returncode == 0 and b"usage:" in result.stdout, result.stderr
