"""What the pipeline tests share: the samples, their truth, running the scripts, reading topics."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from uniqcount import REPO
from uniqcount.kafka_client.kafka_io import read_topic

DATA = REPO.parent / "shared" / "data"
ORDERED = DATA / "sample-ordered.jsonl.gz"
LATE = DATA / "sample-late.jsonl.gz"
WEEK = DATA / "sample-week.jsonl.gz"

needs_samples = pytest.mark.skipif(not ORDERED.exists(), reason="../shared/data is not beside the repo")


def truth_windows(sample: Path, granularity: str) -> list[dict]:
    """The sample's truth file, one granularity, in the records' field names."""
    truth = sample.with_name(sample.name.replace(".jsonl.gz", ".truth.jsonl"))
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    return [{"window_start": r["start"], "unique_users": r["unique"], "frames": r["frames"]}
            for r in rows if r["granularity"] == granularity]


def truth_minutes(sample: Path) -> list[dict]:
    return truth_windows(sample, "minute")


def as_truth(records: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("window_start", "unique_users", "frames")} for r in records]


def of(records: list[dict], granularity: str = "minute") -> list[dict]:
    """The records of one granularity, in the order they came."""
    return [r for r in records if r["granularity"] == granularity]


def latest_per_key(records: list[dict], granularity: str = "minute") -> list[dict]:
    """What a compacted output topic keeps of one granularity: the last record of each window, in
    window order."""
    last = {r["window_start"]: r for r in of(records, granularity)}
    return [last[start] for start in sorted(last)]


def script(name: str, *args: str, stdin: bytes | None = None, env: dict | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess:
    """Run a top-level script. If it hangs, SIGABRT makes faulthandler print every thread's stack,
    and the failure shows it with the script's stderr."""
    command = [sys.executable, str(REPO / name), *args]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=REPO, env={**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})})
    try:
        stdout, stderr = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate()
        pytest.fail(f"{name} {' '.join(args)} still running after {timeout:.0f} s; its stderr:\n"
                    f"{stderr.decode(errors='replace')[-20000:]}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def kafka_env(bootstrap: str, **extra: str) -> dict[str, str]:
    """Topics and group of one test run, never shared with another."""
    run = uuid.uuid4().hex[:8]
    return {"BOOTSTRAP_SERVERS": bootstrap, "TOPIC": f"events-{run}", "OUTPUT_TOPIC": f"out-{run}",
            "DLQ_TOPIC": f"dlq-{run}", "CONSUMER_GROUP": f"group-{run}", **extra}


def produce(env: dict, path: Path, data: bytes) -> None:
    """`data` written to `path`, then loaded into the test's input topic with producer.py."""
    path.write_bytes(data)
    result = script("producer.py", "--input", str(path), env=env)
    assert result.returncode == 0, result.stderr


def start_consumer(env: dict, stderr: int = subprocess.DEVNULL) -> subprocess.Popen:
    """consumer.py left running, as a user runs it: the caller signals or kills it."""
    return subprocess.Popen([sys.executable, str(REPO / "consumer.py"), "--quiet"], cwd=REPO,
                            env={**os.environ, **env}, stderr=stderr)


def follow(bootstrap: str, topic: str, count: int) -> list[tuple[float, dict]]:
    """The first `count` records of a live topic: (when the consumer sent it, record). The time is the
    record's CreateTime in seconds, set by the sending producer: when this reader sees a record depends
    on how fast it joins, which on a slow machine can be seconds after the record was written."""
    reader = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=30000, isolation_level="read_committed")
    sent = []
    try:
        for message in reader:
            sent.append((message.timestamp / 1000, json.loads(message.value)))
            if len(sent) == count:
                break
    finally:
        reader.close()
    return sent


VIA = ["stdin", pytest.param("broker", marks=pytest.mark.kafka)]  # the two ways in, for parametrize


def run_consumer(via: str, data: bytes, *args: str, request, tmp_path: Path) -> tuple[list[dict], list, str]:
    """consumer.py on these frames with its dead letters kept: (records, [(reason, frame)], stderr).
    stdin: --input - with a --dlq file; broker: producer.py, then consumer.py --exit-at-end, then
    events-output and events-dlq read back."""
    if via == "stdin":
        dlq = tmp_path / "dead.tsv"
        result = script("consumer.py", "--input", "-", "--dlq", str(dlq), *args, stdin=data)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        dead = [tuple(line.split(b"\t", 1)) for line in dlq.read_bytes().split(b"\n")[:-1]]  # frames may hold \r
        return records, dead, result.stderr.decode()
    bootstrap = request.getfixturevalue("bootstrap")
    env = kafka_env(bootstrap)
    produce(env, tmp_path / "frames.jsonl", data)
    result = script("consumer.py", "--exit-at-end", "--quiet", *args, env=env)
    assert result.returncode == 0, result.stderr
    messages = read_topic(bootstrap, env["OUTPUT_TOPIC"])
    records = [json.loads(m.value) for m in messages]
    assert [m.key.decode() for m in messages] == [f"{r['granularity']}:{r['window_start']}" for r in records]
    dead = [(dict(m.headers)["reason"], m.value) for m in read_topic(bootstrap, env["DLQ_TOPIC"])]
    return records, dead, result.stderr.decode()


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, which must be one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])
