"""Exactly once through real brokers: consumers SIGKILLed at random moments and restarted, a crash
after most of a week of frames, a standby consumer taking over. The output topic, read with
read_committed, is held against an uninterrupted run and the sample's truth; nothing in it twice."""
from __future__ import annotations

import collections
import gzip
import json
import math
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.broker.test_faults import assert_no_duplicates, assert_truth, drain, records_of, start_consumer
from tests.helpers import LATE, WEEK, as_truth, kafka_env, latest_per_key, needs_samples, produce, script, truth_windows
from uniqcount import REPO
from uniqcount.cli.query import stored_index
from uniqcount.core.counters import DEFAULT_LG_K, hll_relative_standard_error
from uniqcount.core.ranges import answer
from uniqcount.core.sketches import SIZES, small_bytes
from uniqcount.kafka_client.kafka_io import read_topic
from uniqcount.runtime import config

pytestmark = [pytest.mark.kafka, needs_samples]
STEADY = dict(IDLE_FLUSH_SECONDS="100000", STATUS_INTERVAL="1", SESSION_TIMEOUT_MS="6000", EXACT_UP_TO="hour")


def wait_for(log: Path, text: str, timeout: float = 90, times: int = 1) -> str:
    """The log once `text` is in it `times` times."""
    deadline = time.monotonic() + timeout
    while (found := log.read_text() if log.exists() else "").count(text) < times:
        assert time.monotonic() < deadline, f"no {text!r} in {log}: {found[-2000:]}"
        time.sleep(0.1)
    return found


def restored_from(text: str) -> list[int]:
    """The offsets a consumer's restores read on from (None, before any checkpoint: 0)."""
    return [0 if o == "None" else int(o) for o in re.findall(r"reading on from offsets? (\w+)", text)]


def committed(bootstrap: str, env: dict) -> int | None:
    """The group's committed offset, once no transaction of it is under way (read_committed)."""
    group = KafkaConsumer(bootstrap_servers=bootstrap, group_id=env["CONSUMER_GROUP"], enable_auto_commit=False,
                          isolation_level="read_committed")
    try:
        return group.committed(TopicPartition(env["TOPIC"], 0))
    finally:
        group.close()


def paced_producer(env: dict, rate: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(REPO / ".venv/bin/python"), "producer.py", "--input", str(LATE), "--rate", rate],
                            cwd=REPO, env={**os.environ, **env}, stderr=open(log, "wb"))


def finals(bootstrap: str, topic: str) -> list[tuple[str, dict]]:
    """(key, record) of the final records and corrections, in topic order. Provisional records show
    counts as of a batch's end, and a correction gathers the late frames of a batch: both depend on
    how the input came in batches, which a restart changes. A window's first final record and its
    last one do not."""
    return [(bytes(m.key).decode(), json.loads(m.value)) for m in read_topic(bootstrap, topic)
            if json.loads(m.value)["final"]]


def batch_free(records: list[tuple[str, dict]]) -> tuple[dict, dict]:
    """The first final record and the latest one (but for its revision number), per key; and each
    key's revisions must run 0, 1, 2, ... with none twice and none left out."""
    revisions = collections.defaultdict(list)
    for key, record in records:
        revisions[key].append(record["revision"])
    assert all(found == list(range(len(found))) for found in revisions.values()), revisions
    first = {key: record for key, record in records if record["revision"] == 0}
    latest = {key: {**record, "revision": None} for key, record in records}  # how many: batching's
    return first, latest


def test_ten_sigkills_leave_the_output_of_an_uninterrupted_run(bootstrap, tmp_path):
    """The sample is fed at 10x its event-time speed (about 50 s) while consumer.py is SIGKILLed ten
    times, each time 0.2 to 3 s after it restored, and started again (the ten lives take 30-50 s); with a checkpoint every second,
    most kills fall inside a transaction. Every window's first final record and its latest are an
    uninterrupted run's, field for field; its revisions run 0, 1, 2, ..., none twice or missing."""
    uninterrupted = kafka_env(bootstrap, **STEADY)
    produce(uninterrupted, tmp_path / "all.jsonl", gzip.decompress(LATE.read_bytes()))
    assert script("consumer.py", "--exit-at-end", "--quiet", env=uninterrupted).returncode == 0
    expected = finals(bootstrap, uninterrupted["OUTPUT_TOPIC"])

    env = kafka_env(bootstrap, **STEADY, CHECKPOINT_SECONDS="1", INSTANCE_ID="killed")
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    producer = paced_producer(env, "10", tmp_path / "producer.log")
    offsets = []
    try:
        for life in range(10):
            log = tmp_path / f"consumer-{life}.log"
            consumer = start_consumer(env, log)
            try:
                text = wait_for(log, "reading on from offset")
                time.sleep(rng.uniform(0.2, 3.0))
            finally:
                consumer.kill()
                consumer.wait()
            offsets += restored_from(text)
        assert producer.wait(timeout=240) == 0, (tmp_path / "producer.log").read_text()
    finally:
        producer.kill()
    log = tmp_path / "consumer-last.log"
    last = start_consumer(env, log)
    wait_for(log, "reading on from offset")  # SIGUSR1 before its handler is set would end it
    text = drain(last, log)
    offsets += restored_from(text)
    assert offsets == sorted(offsets) and offsets[-1] > offsets[0], (seed, offsets)  # it went on, never back
    assert batch_free(finals(bootstrap, env["OUTPUT_TOPIC"])) == batch_free(expected), f"seed {seed}"
    assert_truth(bootstrap, env)


def test_a_crash_after_most_of_a_week_reads_only_what_came_after_the_last_checkpoint_and_ranges_hold(
        bootstrap, tmp_path):
    """700,000 frames, six granularities: 85% of them are in the topic, the consumer is SIGKILLed once
    it has checkpointed them, then the rest comes. The restart restores the state and reads exactly
    the frames after the committed offset, and the output is exact. Then 100 ranges from a minute to
    the whole week are asked of the stored sketches (assert_ranges)."""
    env = kafka_env(bootstrap, **STEADY, CHECKPOINT_SECONDS="1", INSTANCE_ID="week", ROLLING=",".join(ROLLING))
    lines = [line for line in gzip.decompress(WEEK.read_bytes()).splitlines() if line.strip()]
    total, most = len(lines), int(0.85 * len(lines))  # frames: one record each
    produce(env, tmp_path / "most.jsonl", b"\n".join(lines[:most]))
    log = tmp_path / "first.log"
    consumer = start_consumer(env, log)
    try:
        deadline = time.monotonic() + 180
        while (committed(bootstrap, env) or 0) < most:
            assert time.monotonic() < deadline and consumer.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
    finally:
        consumer.kill()
        consumer.wait()
    produce(env, tmp_path / "rest.jsonl", b"\n".join(lines[most:]))
    at = committed(bootstrap, env)
    assert at == most
    restart = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert restart.returncode == 0, restart.stderr
    stderr = restart.stderr.decode()
    print(next(line for line in stderr.splitlines() if "restored" in line))  # its size and time, with -rP
    assert restored_from(stderr) == [at]
    read = int(re.search(r"done: ([\d,]+) frames", stderr).group(1).replace(",", ""))
    assert read == total - at, stderr[-2000:]
    records = records_of(bootstrap, env["OUTPUT_TOPIC"])
    assert_no_duplicates(records)
    for granularity in ("minute", "hour"):
        assert as_truth(latest_per_key(records, granularity)) == truth_windows(WEEK, granularity)
    for granularity in ("day", "week", "month", "year"):
        latest, truth = latest_per_key(records, granularity), truth_windows(WEEK, granularity)
        assert [(r["window_start"], r["frames"]) for r in latest] == [(t["window_start"], t["frames"]) for t in truth]
    assert_ranges(bootstrap, env, lines)
    assert_rolling(records, lines, ROLLING)


ROLLING = {"1h": 3600, "24h": 86_400, "7d": 7 * 86_400}  # the setting, and the lengths


def assert_rolling(records: list[dict], lines: list[bytes], lengths: dict[str, int]) -> None:
    """One rolling record per length for each minute that held frames, ending with it; 100 of each
    length (or all) against the distinct uids of a full json.loads of the frames in [start, end):
    its frames exactly, its users within 4 relative standard errors, inside its 95% bounds in most."""
    frames = [json.loads(line) for line in lines]
    ts = np.array([math.floor(float(f["ts"])) for f in frames])
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    _, uids = np.unique(np.array([f["uid"] for f in frames]), return_inverse=True)
    uids = uids[order]
    ends = sorted({int(t) // 60 * 60 + 60 for t in np.unique(ts)})
    rng = random.Random(27)
    checked, inside = 0, 0
    for name, length in lengths.items():
        latest = {r["window_end"]: r for r in latest_per_key(records, f"rolling_{name}")}
        assert sorted(latest) == ends and all(r["window_start"] == r["window_end"] - length for r in latest.values())
        for end in rng.sample(ends, min(100, len(ends))):
            a, b = np.searchsorted(ts, end - length), np.searchsorted(ts, end)
            truth = int(np.unique(uids[a:b]).size)
            got = latest[end]
            assert got["frames"] == b - a and got["estimate"] == "hll", got
            assert abs(got["unique_users"] - truth) <= 4 * hll_relative_standard_error(DEFAULT_LG_K) * truth, got
            checked += 1
            inside += got["lower_bound"] <= truth <= got["upper_bound"]
    assert inside >= 0.8 * checked


def assert_ranges(bootstrap: str, env: dict, lines: list[bytes]) -> None:
    """100 random ranges (minutes to the whole week, some not on a minute) against the distinct uids of
    a full json.loads of the frames, in what each answer says it covers: exact inside the exact
    horizon (the last day), sketched beyond it: within 4 relative standard errors, inside the 95%
    bounds in most. What the first process stored past the horizon was forgotten by the second, but
    for small windows, whose hashes are their record for life."""
    frames = [json.loads(line) for line in lines]
    ts = np.array([int(f["ts"]) for f in frames])
    _, uids = np.unique(np.array([f["uid"] for f in frames]), return_inverse=True)
    index = stored_index(config.load(environ={**os.environ, "BOOTSTRAP_SERVERS": bootstrap,
                                              "OUTPUT_TOPIC": env["OUTPUT_TOPIC"]}))
    first, end = int(ts.min()), int(ts.max()) + 1
    newest = max(s + 60 for s in index.windows["minute"])
    assert all(s + SIZES[g] > newest - 86_400 or 8 * w.users <= small_bytes(DEFAULT_LG_K)
               for g, ws in index.windows.items() for s, w in ws.items() if w.exact)  # past the horizon: small ones
    rng = random.Random(26)
    sketched, inside = 0, 0
    for n in range(100):
        length = int(math.exp(rng.uniform(math.log(60), math.log(end - first))))
        start = rng.randrange(first, end - length + 1)
        if n % 5:  # most on the minute grid, as people ask
            start, length = start // 60 * 60, max(60, length // 60 * 60)
        got = answer(index, start, start + length)
        covered = (ts >= start) & (ts < start + length)
        for a, b in got["missing"]:
            covered &= (ts < a) | (ts >= b)
        truth = int(np.unique(uids[covered]).size)
        assert got["complete"] == (not got["missing"]) and got["frames"] == int(covered.sum()), got
        if start >= newest - 86_400 and got["estimate"] == "exact":
            assert got["unique_users"] == truth, got
        else:
            assert got["estimate"] == "hll" or got["unique_users"] == truth, got
            sketched += got["estimate"] == "hll"
            assert abs(got["unique_users"] - truth) <= 4 * hll_relative_standard_error(DEFAULT_LG_K) * truth, got
            inside += got["lower_bound"] <= truth <= got["upper_bound"] if got["estimate"] == "hll" else 1
    assert sketched >= 10 and inside >= 0.8 * sketched
    query = subprocess.run(["./run.sh", "query", "2016-07-13T09:30:00Z", "2016-07-13T17:00:00Z"],
                           cwd=REPO, env={**os.environ, **env}, capture_output=True, timeout=120)
    assert query.returncode == 0, query.stderr
    record = json.loads(query.stdout)
    assert record == answer(index, 1468402200, 1468429200) and record["windows"][0] == "minute:1468402200"


def owner(*logs: Path, timeout: float = 30) -> int:
    """Which consumer counts the partition now: the one restored last and neither moved off nor
    rewound since (a rewind restores what is still owned; one that lost the partition meanwhile
    restores nothing). Waited for: a rewind under way has said it and not yet restored."""
    def owns(text: str) -> bool:
        off = max(text.rfind("partitions moved to another consumer"), text.rfind("going on from the last checkpoint"))
        return text.rfind("restored partition(s) 0") > off
    deadline = time.monotonic() + timeout
    while len(owners := [i for i, log in enumerate(logs) if owns(log.read_text())]) != 1:
        assert time.monotonic() < deadline, [log.read_text()[-3000:] for log in logs]
        time.sleep(0.2)
    return owners[0]


def test_a_standby_consumer_takes_over_from_the_state_topic_when_the_first_is_killed(bootstrap, tmp_path):
    """Consumers a and b in one group, one partition: the one that owns it is SIGKILLed while the
    sample streams in (at 10x); the other takes it over from its last checkpoint, exact, nothing twice."""
    base = kafka_env(bootstrap, **STEADY)
    producer = paced_producer(base, "10", tmp_path / "producer.log")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    consumers = [start_consumer({**base, "INSTANCE_ID": "a"}, logs[0])]
    try:
        wait_for(logs[0], "reading on from offset")
        consumers.append(start_consumer({**base, "INSTANCE_ID": "b"}, logs[1]))
        time.sleep(12)  # b joined: one of the two owns the partition, the other waits
        killed = owner(*logs)
        consumers[killed].send_signal(signal.SIGKILL)
        consumers[killed].wait()
        standby = 1 - killed
        restores = logs[standby].read_text().count("reading on from offset")
        text = wait_for(logs[standby], "reading on from offset", 60, restores + 1)
        assert max(restored_from(text)) > 0, text  # from the state the killed one checkpointed
        assert producer.wait(timeout=180) == 0
    finally:
        producer.kill()
    text = drain(consumers[standby], logs[standby])
    assert "frames in 100,000 = counted 100,000" in text, text[-2000:]
    assert_truth(bootstrap, base)


def test_an_input_written_in_transactions_counts_its_committed_frames_and_drains(bootstrap):
    """Someone else's transactional producer: an aborted transaction between two committed ones, the
    topic ending with a commit marker (its end offset is past the last frame). The consumer counts
    the committed frames only and still sees that it reached the end."""
    env = kafka_env(bootstrap, **STEADY)
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"input-{env['TOPIC']}")
    producer.init_transactions()
    for frames, commit in [([("a", 60), ("b", 61)], True), ([("x", 62), ("y", 63)], False),
                           ([("c", 64), ("a", 130)], True)]:
        producer.begin_transaction()
        for uid, ts in frames:
            producer.send(env["TOPIC"], json.dumps({"uid": uid, "ts": ts}).encode())
        producer.commit_transaction() if commit else producer.abort_transaction()
    producer.close()
    done = script("consumer.py", "--exit-at-end", "--quiet", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "frames in 4 = counted 4" in done.stderr.decode()
    minutes = [(r["window_start"], r["unique_users"], r["frames"]) for r in latest_per_key(
        records_of(bootstrap, env["OUTPUT_TOPIC"]))]
    assert minutes == [(60, 3, 3), (120, 1, 1)]


def test_a_second_consumer_with_the_same_instance_id_fences_the_first_and_the_output_stays_exact(
        bootstrap, tmp_path):
    """A mistake: two consumers of one group with one INSTANCE_ID. The second one's start fences the
    first one's transaction; the fenced one redoes its work since its last checkpoint with a new
    producer (fencing the other in turn), and the output stays exact, nothing twice."""
    base = kafka_env(bootstrap, **STEADY, CHECKPOINT_SECONDS="1", INSTANCE_ID="same")
    producer = paced_producer(base, "10", tmp_path / "producer.log")
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    consumers = [start_consumer(base, logs[0])]
    try:
        wait_for(logs[0], "reading on from offset")
        time.sleep(3)  # checkpoints made
        consumers.append(start_consumer(base, logs[1]))
        assert producer.wait(timeout=180) == 0
        time.sleep(3)
        texts = [log.read_text() for log in logs]
        assert any("ProducerFenced" in text for text in texts), texts
        survivor = owner(*logs)
        consumers[1 - survivor].kill()
        consumers[1 - survivor].wait()
    finally:
        producer.kill()
    text = drain(consumers[survivor], logs[survivor])
    assert "frames in 100,000 = counted 100,000" in text, text[-2000:]
    assert_truth(bootstrap, base)
