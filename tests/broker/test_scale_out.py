"""Scale-out through the real broker: a topic of four partitions counted by one to three consumers
of one group, its input not keyed (whole blocks to the partitions in turn) or keyed by uid. The
read_committed output is held against the sample's truth at every granularity, with every window's
revisions 0, 1, 2, ... once each; consumers are SIGKILLed, added midway, and the merger killed."""
from __future__ import annotations

import collections
import gzip
import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.broker.test_exactly_once import assert_rolling, batch_free, finals, paced_producer, restored_from, wait_for
from tests.broker.test_faults import assert_no_duplicates, assert_truth, records_of, sample_lines, start_consumer
from tests.helpers import LATE, as_truth, kafka_env, latest_per_key, needs_samples, script, truth_windows
from uniqcount.core.granularities import GRANULARITIES
from uniqcount.devtools import drills
from uniqcount.kafka_client.block_producer import BlockSender
from uniqcount.kafka_client.kafka_io import TRANSACTION_TIMEOUT_MS, read_topic
from uniqcount.kafka_client.keyed import default_partition

pytestmark = [pytest.mark.kafka, needs_samples]
MERGER = "merges them all"
LEVELS = ("read_committed", "read_uncommitted")
TAKEN_OVER = "merger of 4 partitions: restored"


def four_partitions(bootstrap: str, **settings: str) -> dict[str, str]:
    """The test's settings, its input topic made with 4 partitions."""
    env = kafka_env(bootstrap, SESSION_TIMEOUT_MS="6000", CHECKPOINT_SECONDS="1", **settings)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(env["TOPIC"], 4, 1)])
    finally:
        admin.close()
    return env


def consumers(env: dict, tmp_path: Path, names: list[str], alike: bool = False
              ) -> dict[str, tuple[subprocess.Popen, Path]]:
    """Consumers named by INSTANCE_ID, or (`alike`) started as a user starts them: no name given."""
    started = {}
    for name in names:
        log = tmp_path / f"{name}.log"
        started[name] = start_consumer(env if alike else {**env, "INSTANCE_ID": name}, log), log
    return started


def drain_all(running: dict[str, tuple[subprocess.Popen, Path]], timeout: float = 180) -> None:
    for process, _ in running.values():
        process.send_signal(signal.SIGUSR1)
    try:
        for name, (process, log) in running.items():
            assert process.wait(timeout=timeout) == 0, f"{name}: {log.read_text()[-3000:]}"
    finally:
        for process, _ in running.values():
            process.kill()


def no_open_transaction(bootstrap: str, topic: str, timeout: float = 60) -> None:
    """A consumer SIGKILLed in a transaction and not restarted holds read_committed readers back
    until the broker aborts it (TRANSACTION_TIMEOUT_MS): wait for that."""
    assert drills.no_open_transaction(bootstrap, topic, timeout) < timeout, "a transaction still open"


def assert_exact_once_each(bootstrap: str, env: dict) -> None:
    """The truth at every granularity (counted with HLL: frames exact, users within bounds), no
    record twice, and each window's final records revisions 0, 1, 2, ..."""
    no_open_transaction(bootstrap, env["OUTPUT_TOPIC"])
    assert_truth(bootstrap, env)
    batch_free(finals(bootstrap, env["OUTPUT_TOPIC"]))
    assert not any(m.key.decode().count(":") != 1 for m in read_topic(bootstrap, env["OUTPUT_TOPIC"]))


def last_role(log: Path) -> str:
    """A consumer's last line saying what it counts (and whether it merges): the roles move at rebalances."""
    return ([line for line in log.read_text().splitlines() if "counts partition" in line] or [""])[-1]


def test_murmur2_partitions_as_kafkas_java_client_does():
    """Kafka's own test vectors (Utils.murmur2 in UtilsTest), then the partition of a key."""
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829, b"abc": 479470107}
    for key, java in vectors.items():
        assert default_partition(key, 1 << 31) == java & 0x7FFFFFFF


@pytest.mark.parametrize("keyed, count, alike", [(False, 2, False), (False, 3, True), (True, 2, False)],
                         ids=["blocks-2", "blocks-3-started-alike", "uid-2"])
def test_consumers_of_one_group_publish_one_exact_answer(bootstrap, tmp_path, keyed, count, alike):
    """Every granularity counted exactly (EXACT_UP_TO=year), so each equals the truth file. Started
    alike (no INSTANCE_ID, one host), each takes a transactional id of its own: none is fenced."""
    rolling = {"10m": 600, "1h": 3600} if keyed else {}  # the merger unites the minutes' users for them,
    env = four_partitions(bootstrap, EXACT_UP_TO="year", ROLLING=",".join(rolling),  # none stored
                          **({"INPUT_KEYED_BY_UID": "true", "SKETCH_RETENTION": ""} if keyed else {}))
    running = consumers(env, tmp_path, [f"c{n}" for n in range(count)], alike)
    for _, log in running.values():
        wait_for(log, "counts partition")
    produced = script("producer.py", "--input", str(LATE), *(["--key", "uid"] if keyed else []), env=env)
    assert produced.returncode == 0, produced.stderr
    drain_all(running)
    assert_exact_once_each(bootstrap, env)
    assert not any("fenced" in log.read_text().lower() for _, log in running.values())
    merging = [name for name, (_, log) in running.items() if MERGER in log.read_text()]
    assert merging, "one consumer merges"
    frames = read_topic(bootstrap, env["TOPIC"])
    assert {m.partition for m in frames} == {0, 1, 2, 3}
    if keyed:  # each user in the partition Kafka's default partitioner gives its uid
        assert all(m.partition == default_partition(m.key, 4) for m in frames)
        partials = read_topic(bootstrap, env["OUTPUT_TOPIC"] + "-partials")
        assert partials, "partials were sent (the merger's tombstones may have cleared most)"
        lines = [line for line in gzip.decompress(LATE.read_bytes()).splitlines() if line.strip()]
        assert_rolling(records_of(bootstrap, env["OUTPUT_TOPIC"]), lines, rolling)


def test_four_partitions_and_one_consumer_give_exact_counts(bootstrap):
    """Asked for early records too, it says in one line that the merger publishes final ones only."""
    env = four_partitions(bootstrap, EMIT_EARLY_EVERY="1")
    produced = script("producer.py", "--input", str(LATE), env=env)
    assert produced.returncode == 0, produced.stderr
    consumed = script("consumer.py", "--exit-at-end", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr
    stderr = consumed.stderr.decode()
    assert MERGER in stderr and "EMIT_EARLY_EVERY=1 is for a topic of one partition" in stderr
    assert_exact_once_each(bootstrap, env)
    assert all(record["final"] for record in records_of(bootstrap, env["OUTPUT_TOPIC"]))


def test_a_consumer_killed_midway_and_one_added_midway_leave_the_answer_exact(bootstrap, tmp_path):
    env = four_partitions(bootstrap)
    running = consumers(env, tmp_path, ["c0", "c1"])
    producer = paced_producer(env, "20", tmp_path / "producer.log")  # about 30 s
    time.sleep(10)
    victim, victim_log = running["c1"]
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    time.sleep(2)
    running["c1"] = start_consumer({**env, "INSTANCE_ID": "c1"}, tmp_path / "c1-again.log"), tmp_path / "c1-again.log"
    time.sleep(6)
    running.update(consumers(env, tmp_path, ["c2"]))
    assert producer.wait(timeout=120) == 0, (tmp_path / "producer.log").read_text()
    wait_for(tmp_path / "c2.log", "counts partition")
    drain_all(running)
    assert_exact_once_each(bootstrap, env)


def transactional_id(log: Path) -> str:
    return log.read_text().split("in one transaction (id ", 1)[1].split(")", 1)[0]


def test_three_started_alike_one_killed_and_restarted_alike_resume_exact(bootstrap, tmp_path):
    """No INSTANCE_ID anywhere: the restart takes the killed one's slot, so its transactional id;
    its start aborts what the dead one left open, and it reads on from the group's checkpoint.
    None is fenced, all keep running, and the answer is exact with nothing twice."""
    env = four_partitions(bootstrap)
    running = consumers(env, tmp_path, ["c0", "c1", "c2"], alike=True)
    for _, log in running.values():
        wait_for(log, "counts partition")
    producer = paced_producer(env, "20", tmp_path / "producer.log")  # about 30 s
    time.sleep(12)
    victim, victim_log = running["c1"]
    victim.kill()
    victim.wait()
    again = tmp_path / "c1-again.log"
    running["c1"] = start_consumer(env, again), again
    wait_for(again, "counts partition")
    assert transactional_id(again) == transactional_id(victim_log)
    assert producer.wait(timeout=120) == 0, (tmp_path / "producer.log").read_text()
    assert all(process.poll() is None for process, _ in running.values())
    drain_all(running)
    assert_exact_once_each(bootstrap, env)
    logs = {name: log.read_text() for name, (_, log) in running.items()}
    assert not any("fenced" in text.lower() for text in logs.values())
    assert any(offset > 0 for offset in restored_from(again.read_text())), "resumed from a checkpoint"


def test_the_merger_killed_midway_is_taken_over_by_another_consumer(bootstrap, tmp_path):
    env = four_partitions(bootstrap)
    running = consumers(env, tmp_path, ["c0", "c1"])
    for _, log in running.values():
        wait_for(log, "counts partition")
    time.sleep(3)  # the last rebalance settled
    producer = paced_producer(env, "20", tmp_path / "producer.log")
    time.sleep(12)
    merger = [name for name, (_, log) in running.items() if MERGER in last_role(log)]
    assert len(merger) == 1, merger
    process, _ = running.pop(merger[0])
    (_, (_, log)), = running.items()
    restores = log.read_text().count(TAKEN_OVER)  # it may have merged before a rebalance moved the role
    process.send_signal(signal.SIGKILL)
    process.wait()
    text = wait_for(log, TAKEN_OVER, times=restores + 1)
    taken_over = text.split(TAKEN_OVER)[-1].splitlines()[0]
    assert re.fullmatch(r" \d+ windows .* reading on from offset \d+", taken_over), taken_over
    assert producer.wait(timeout=120) == 0
    drain_all(running)
    assert_exact_once_each(bootstrap, env)


def test_a_partition_that_receives_nothing_does_not_stop_the_results(bootstrap, tmp_path):
    """Partition 3 never gets a frame: once it is idle, the others' minutes come out, while the
    consumer runs on (no drain)."""
    env = four_partitions(bootstrap, IDLE_FLUSH_SECONDS="3")
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sender = BlockSender(producer, env["TOPIC"], lambda frames, exc: pytest.fail(f"{frames} not sent: {exc}"))
    lines = sample_lines()
    for p in range(3):
        sender.send(lines[p::3], partition=p)
    producer.flush(timeout=60)
    producer.close()
    consumer, log = consumers(env, tmp_path, ["c0"])["c0"]
    truth = truth_windows(LATE, "minute")
    try:
        wait_for(log, "counts partition")  # its topics are made
        deadline = time.monotonic() + 90
        while True:
            records = [json.loads(m.value) for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])]
            minutes = [(r["window_start"], r["unique_users"], r["frames"]) for r in latest_per_key(records)]
            if len(minutes) >= len(truth) - 1:
                break
            assert consumer.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"{len(minutes)} minutes of {len(truth)}: {log.read_text()[-2000:]}"
            time.sleep(1)
    finally:
        consumer.kill()
    assert minutes[:len(truth) - 1] == [(t["window_start"], t["unique_users"], t["frames"]) for t in truth[:-1]]
    assert collections.Counter(m.partition for m in read_topic(bootstrap, env["TOPIC"]))[3] == 0


@pytest.mark.parametrize("count, kill_merger", [(2, False), (3, True)], ids=["2-consumers", "3-merger-killed"])
def test_a_quiet_topic_closes_every_window_without_a_drain(bootstrap, tmp_path, count, kill_merger):
    """Load, then silence, and no drain: every window of every granularity comes out final and
    exact within IDLE_FLUSH_SECONDS plus the checkpoints of the partials and of the merger, though
    event time is hours or months from the ends of the longer ones. With the merger's owner
    SIGKILLed in the silence, another takes the role over and the windows come all the same (its
    open transaction is aborted by the broker first: the bound grows by that)."""
    idle, checkpoint = 3, 1
    env = four_partitions(bootstrap, IDLE_FLUSH_SECONDS=str(idle), EXACT_UP_TO="year")
    running = consumers(env, tmp_path, [f"c{n}" for n in range(count)])
    for _, log in running.values():
        wait_for(log, "counts partition")
    produced = script("producer.py", "--input", str(LATE), env=env)
    assert produced.returncode == 0, produced.stderr
    quiet_from = time.monotonic()
    bound = idle + 2 * checkpoint
    if kill_merger:
        time.sleep(1)
        merger = [name for name, (_, log) in running.items() if MERGER in last_role(log)]
        assert len(merger) == 1, merger
        process, _ = running.pop(merger[0])
        process.kill()
        process.wait()
        bound += int(env["SESSION_TIMEOUT_MS"]) / 1000 + TRANSACTION_TIMEOUT_MS / 1000
    truth = {name: truth_windows(LATE, name) for name in GRANULARITIES}
    try:
        while any(len(latest_per_key(records_of(bootstrap, env["OUTPUT_TOPIC"]), name)) < len(windows)
                  for name, windows in truth.items()):
            assert all(p.poll() is None for p, _ in running.values()), [log.read_text()[-2000:] for _, log in running.values()]
            assert time.monotonic() - quiet_from < bound + 15, f"not every window final {bound} s into the silence"
            time.sleep(0.5)
        print(f"every window final {time.monotonic() - quiet_from:.1f} s into the silence (bound {bound} s)")
    finally:
        for process, _ in running.values():
            process.kill()
    no_open_transaction(bootstrap, env["OUTPUT_TOPIC"])
    records = records_of(bootstrap, env["OUTPUT_TOPIC"])
    assert {name: as_truth(latest_per_key(records, name)) for name in truth} == truth
    assert_no_duplicates(records)
    batch_free(finals(bootstrap, env["OUTPUT_TOPIC"]))
