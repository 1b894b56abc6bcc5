"""Event time on the samples, via stdin and via the real broker: late frames, corrections,
retention, bit flips, dead letters. Expected values come from the truth files or a full json.loads."""
from __future__ import annotations

import gzip
import json
import signal
import time
from collections import defaultdict

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.bit_flips import flip_high_bits
from tests.helpers import (
    LATE,
    ORDERED,
    VIA,
    as_truth,
    follow,
    kafka_env,
    latest_per_key,
    needs_samples,
    of,
    produce,
    run_consumer,
    script,
    start_consumer,
    truth_minutes,
    truth_windows,
)
from uniqcount.kafka_client.kafka_io import read_topic


def minutes_of(lines: list[bytes]) -> list[dict]:
    """Exact counts of the given frames by a full json.loads: the independent oracle."""
    users, frames = defaultdict(set), defaultdict(int)
    for line in lines:
        frame = json.loads(line)
        start = int(float(frame["ts"])) // 60 * 60
        users[start].add(frame["uid"])
        frames[start] += 1
    return [{"window_start": s, "unique_users": len(users[s]), "frames": frames[s]} for s in sorted(users)]


@needs_samples
@pytest.mark.parametrize("via", VIA)
def test_sample_late_latest_record_per_minute_is_the_truth(via, request, tmp_path):
    records, dead, stderr = run_consumer(via, gzip.decompress(LATE.read_bytes()), request=request,
                                         tmp_path=tmp_path)
    assert dead == []
    assert as_truth(latest_per_key(records)) == truth_minutes(LATE)
    corrections = [r for r in of(records) if r["revision"] > 0]
    assert corrections and all(r["final"] and r["late_frames"] > 0 for r in corrections)
    late = sum(r["late_frames"] for r in latest_per_key(records))
    assert f"counted 100,000 (late {late:,}) + dead-lettered 0" in stderr


@needs_samples
@pytest.mark.parametrize("via", VIA)
def test_sample_late_without_retention_final_plus_too_late_is_the_truth(via, request, tmp_path):
    lines = gzip.decompress(LATE.read_bytes()).splitlines()
    records, dead, stderr = run_consumer(via, b"\n".join(lines), "--late-retention", "0", "--granularities",
                                         "minute", request=request, tmp_path=tmp_path)
    minutes = of(records)
    assert minutes == latest_per_key(records) and all(r["revision"] == 0 for r in minutes)
    assert dead and {reason for reason, _ in dead} == {b"too_late"}
    # the final records are exactly the frames that were not dead-lettered ...
    dead_frames = [frame for _, frame in dead]
    remaining = list(lines)
    for frame in dead_frames:
        remaining.remove(frame)
    assert as_truth(minutes) == minutes_of(remaining)
    # ... and with the dead letters added back, every minute's frames are the truth's
    back = defaultdict(int, {m["window_start"]: m["frames"] for m in minutes})
    for m in minutes_of(dead_frames):
        back[m["window_start"]] += m["frames"]
    assert [back[m["window_start"]] for m in truth_minutes(LATE)] == [m["frames"] for m in truth_minutes(LATE)]
    # ... and too late means: its minute had ended 5 s of event time before a frame already seen
    assert sorted(dead_frames) == sorted(too_late_by_brute_force(lines)), "wrong frames dead-lettered"


@needs_samples
def test_frames_too_late_for_their_minute_still_count_in_their_hour(tmp_path):
    """Retention 0 with every granularity: nothing is dead-lettered; the minutes lose their late
    frames, the hour (still open) and everything longer are exactly the truth."""
    lines = gzip.decompress(LATE.read_bytes()).splitlines()
    records, dead, stderr = run_consumer("stdin", b"\n".join(lines), "--late-retention", "0", "--exact-up-to",
                                         "year", request=None, tmp_path=tmp_path)
    assert dead == []
    too_late = too_late_by_brute_force(lines)
    assert sum(m["frames"] for m in latest_per_key(records)) == len(lines) - len(too_late)
    for granularity in ("hour", "day", "week", "month", "year"):
        assert as_truth(latest_per_key(records, granularity)) == truth_windows(LATE, granularity), granularity
    assert f"too late, per granularity: minute {len(too_late):,}" in stderr


def too_late_by_brute_force(lines: list[bytes], lateness: int = 5) -> list[bytes]:
    """Frames whose minute had ended `lateness` seconds before the largest timestamp seen earlier."""
    seen, late = 0, []
    for line in lines:
        ts = int(float(json.loads(line)["ts"]))
        if ts // 60 * 60 + 60 <= seen - lateness:
            late.append(line)
        seen = max(seen, ts)
    return late


@needs_samples
@pytest.mark.parametrize("via", VIA)
def test_bit_flips_are_dead_lettered_and_every_other_minute_stays_exact(via, request, tmp_path):
    lines = gzip.decompress(ORDERED.read_bytes()).splitlines()
    stream, flipped = flip_high_bits(lines, 40, seed=4)
    records, dead, stderr = run_consumer(via, b"\n".join(stream), request=request, tmp_path=tmp_path)
    assert sorted(frame for _, frame in dead) == sorted(flipped)
    for reason, frame in dead:  # ahead: held in vain; behind: past any retention
        assert reason == (b"ts_outlier" if flipped[frame] > 1468244384 else b"too_late")
    untouched = [line for line in stream if line not in flipped]
    assert as_truth(latest_per_key(records)) == minutes_of(untouched)
    assert all(r["revision"] == 0 for r in of(records)), "a flip must not make other frames late"


@pytest.mark.kafka
def test_bad_input_through_the_broker_is_dead_lettered_and_valid_frames_stay_exact(bootstrap):
    env = kafka_env(bootstrap)
    huge_valid = json.dumps({"pad": "x" * 900_000, "uid": "huge", "ts": 65}).encode()
    bad = {
        b"garbage \x00\xff": "bad_json",
        b'{"uid": "a", "ts": 61': "bad_json",
        b"": "bad_json",
        b'"just a string"': "not_object",
        b'{"uid": 7, "ts": 62}': "bad_uid",
        b'{"uid": "a", "ts": true}': "bad_ts",
        b'{"uid": "a", "nested": {"ts": 63}}': "no_ts",
        b'{"uid": "' + b"x" * 900_000: "bad_json",  # huge and unterminated
    }
    valid = [b'{"uid":"a","ts":60}', b'{"ts":"61","uid":"b"}', huge_valid, b'{"uid":"c","ts":130}']
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2_000_000)
    for value in [valid[0], *bad, *valid[1:]]:
        producer.send(env["TOPIC"], value=value, key=b"k")
    producer.flush()
    producer.close()
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    records = of([json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])])
    assert [(r["window_start"], r["unique_users"], r["frames"]) for r in records] == [(60, 3, 3), (120, 1, 1)]
    letters = read_topic(bootstrap, env["DLQ_TOPIC"])
    assert {m.value: dict(m.headers)["reason"].decode() for m in letters} == bad
    assert all(m.key == b"k" and dict(m.headers)["source"].startswith(env["TOPIC"].encode()) for m in letters)
    assert "frames in 12 = counted 4 (late 0) + dead-lettered 8" in consumed.stderr.decode()


@needs_samples
@pytest.mark.kafka
@pytest.mark.parametrize("granularities", ["minute", "minute,hour,day,week,month,year"])
def test_killed_consumer_restarts_without_losing_or_double_counting(granularities, bootstrap, tmp_path):
    """SIGKILL after half the sample was consumed and committed; the rest arrives while it is down.
    The restarted consumer rebuilds open and kept windows from the committed offsets, so the latest
    record per window is still the truth (late frames of windows closed before the crash included).
    Minutes only, the commit moves past the first minutes; with the hour and longer windows open, it
    stays at their first frame."""
    lines = gzip.decompress(LATE.read_bytes()).splitlines()
    half = len(lines) // 2
    # retention 60 s (the sample is at most 10 s late) so that the commit moves past the first minutes
    env = kafka_env(bootstrap, IDLE_FLUSH_SECONDS="100000", STATUS_INTERVAL="0", LATE_RETENTION="60",
                    GRANULARITIES=granularities, EXACT_UP_TO="year")
    produce(env, tmp_path / "first.jsonl", b"\n".join(lines[:half]))
    consumer = start_consumer(env)
    group = KafkaConsumer(bootstrap_servers=bootstrap, group_id=env["CONSUMER_GROUP"], enable_auto_commit=False)
    try:
        deadline = time.monotonic() + 60
        while True:
            committed = group.committed(TopicPartition(env["TOPIC"], 0))
            if committed is not None and (granularities != "minute" or committed > 0):
                break
            assert time.monotonic() < deadline, "the consumer never committed"
            time.sleep(0.5)
    finally:
        group.close()
        consumer.kill()
        consumer.wait()
    before = [json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])]
    assert before, "nothing was emitted before the crash"
    produce(env, tmp_path / "second.jsonl", b"\n".join(lines[half:]))
    resumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert resumed.returncode == 0, resumed.stderr
    records = [json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])]
    for granularity in granularities.split(","):
        assert as_truth(latest_per_key(records, granularity)) == truth_windows(LATE, granularity), granularity
    assert read_topic(bootstrap, env["DLQ_TOPIC"]) == []


@pytest.mark.kafka
def test_early_results_through_the_broker_show_the_open_minute_then_its_final_record(bootstrap, tmp_path):
    env = kafka_env(bootstrap, EMIT_EARLY_EVERY="0.5", IDLE_FLUSH_SECONDS="100000", STATUS_INTERVAL="0")
    produce(env, tmp_path / "in.jsonl", b'{"uid":"a","ts":60}\n{"uid":"b","ts":61}\n{"uid":"a","ts":62}\n')
    consumer = start_consumer(env)
    try:
        [(_, early)] = follow(bootstrap, env["OUTPUT_TOPIC"], 1)
        assert (early["window_start"], early["unique_users"], early["frames"], early["final"]) == (60, 2, 3, False)
        consumer.send_signal(signal.SIGUSR1)
        assert consumer.wait(timeout=30) == 0
    finally:
        consumer.kill()
    last = of([json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])])[-1]
    assert (last["window_start"], last["unique_users"], last["final"], last["revision"]) == (60, 2, True, 0)
