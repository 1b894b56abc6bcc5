"""A user's mistakes end in one line and exit code 1, before anything is changed: never a traceback."""
from __future__ import annotations

import os
import subprocess

import pytest
from kafka import KafkaAdminClient, KafkaProducer

from tests.helpers import ORDERED, kafka_env, needs_samples, script
from uniqcount import REPO
from uniqcount.kafka_client.kafka_io import read_topic


def one_line_error(result: subprocess.CompletedProcess, says: str) -> None:
    """One line, no traceback (after the note that file mode has no checkpoints, for what fails mid-run)."""
    lines = [line for line in result.stderr.decode().strip().splitlines()
             if not line.startswith("consumer: reading ")]
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in lines[0], lines


def corrupt_gzip(tmp_path, at: int) -> str:
    data = bytearray(ORDERED.read_bytes())
    data[at:at + 40] = bytes(b ^ 0xFF for b in data[at:at + 40])
    path = tmp_path / "corrupt.jsonl.gz"
    path.write_bytes(data)
    return str(path)


SETTING_MISTAKES = [
    ({"BOOTSTRAP_SERVERS": "localhost"}, "is not host:port"),
    ({"BOOTSTRAP_SERVERS": "localhost:99999"}, "port 99999"),
    ({"UNIQCOUNT_CONFIG": "/no/such/file"}, "UNIQCOUNT_CONFIG=/no/such/file: no such file"),
    ({"TOPIC": "ev; x"}, "TOPIC='ev; x' is not valid"),
    ({"DLQ_TOPIC": "a" * 250}, "DLQ_TOPIC="),
    ({"ALLOWED_LATENESS": "-1"}, "ALLOWED_LATENESS='-1' is not valid: must be at least 0"),
    ({"LATE_RETENTION": "-5"}, "LATE_RETENTION"),
    ({"IDLE_FLUSH_SECONDS": "nan"}, "IDLE_FLUSH_SECONDS"),
    ({"PRODUCER_COMPRESSION": "snappy2"}, "expected one of zstd, lz4, snappy, gzip, none"),
    ({"TOPIC_PARTITIONS": "0"}, "TOPIC_PARTITIONS"),
]


@pytest.mark.parametrize("name", ["consumer.py", "producer.py"])
@pytest.mark.parametrize("env,says", SETTING_MISTAKES)
def test_a_wrong_setting_is_one_line(name, env, says):
    one_line_error(script(name, "--input", "-", stdin=b"", env=env), says)


@pytest.mark.parametrize("lines,says", [("TOPIC=x\ngarbage here\n", "line 2: not NAME=value"),
                                        ("TOPIC=x\nlonely\n", "line 2: not NAME=value"),
                                        ("NOT_A_SETTING=1\n", "unknown setting")])
def test_a_config_file_line_that_cannot_be_read_is_one_line(tmp_path, lines, says):
    path = tmp_path / "my.env"
    path.write_text(lines)
    one_line_error(script("consumer.py", "--input", "-", stdin=b"", env={"UNIQCOUNT_CONFIG": str(path)}), says)


@pytest.mark.parametrize("args,says", [(["--allowed-lateness", "-3"], "must be at least 0"),
                                       (["--bootstrap-servers", "localhost"], "is not host:port"),
                                       (["--no-such-flag"], "unrecognized arguments")])
def test_a_wrong_flag_is_one_line(args, says):
    one_line_error(script("consumer.py", "--input", "-", *args, stdin=b""), says)


def test_a_wrong_rate_or_limit_is_one_line():
    one_line_error(script("producer.py", "--rate", "0"), "--rate must be positive")
    one_line_error(script("producer.py", "--limit", "-1"), "must be at least 0")


@pytest.mark.parametrize("path,says", [("/no/such/folder/dead.tsv", "No such file or directory"),
                                       ("/tmp", "Is a directory"),
                                       ("/dev/full", "No space left on device")])
def test_an_unwritable_dead_letter_file_is_one_line(path, says):
    one_line_error(script("consumer.py", "--input", "-", "--dlq", path, stdin=b'{"ts":1}\n'), says)


@needs_samples
def test_a_full_disk_on_stdout_is_one_line():
    with open("/dev/full", "wb") as full:
        result = subprocess.run([str(REPO / ".venv/bin/python"), "consumer.py", "--input", str(ORDERED)],
                                cwd=REPO, stdout=full, stderr=subprocess.PIPE)
    one_line_error(result, "cannot write to stdout: No space left on device")


@needs_samples
@pytest.mark.parametrize("at,says", [(5, "Invalid deflate block"), (300, "unreadable input"),
                                     (100_000, "CRC check failed")])
@pytest.mark.parametrize("name", ["consumer.py", pytest.param("producer.py", marks=pytest.mark.kafka)])
def test_a_corrupt_gzip_is_one_line(tmp_path, name, at, says, request):
    if name == "producer.py":
        result = script(name, "--input", corrupt_gzip(tmp_path, at), env=kafka_env(request.getfixturevalue("bootstrap")))
    else:
        result = script(name, "--input", corrupt_gzip(tmp_path, at), "--quiet")
    one_line_error(result, says)


@pytest.mark.kafka
def test_invalid_topic_names_are_refused_before_run_sh_resets_anything(bootstrap):
    """`TOPIC='ev; x' ./run.sh` once deleted the previous results before failing."""
    env = kafka_env(bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(env["OUTPUT_TOPIC"], b"earlier result").get(30)
    producer.close()
    result = subprocess.run(["./run.sh"], cwd=REPO, capture_output=True,
                            env={**os.environ, **env, "TOPIC": "ev; x", "RESET_TOPICS": "true"})
    assert result.returncode == 1 and b"TOPIC='ev; x' is not valid" in result.stderr, result.stderr
    assert b"Traceback" not in result.stderr
    assert [m.value for m in read_topic(bootstrap, env["OUTPUT_TOPIC"])] == [b"earlier result"]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        assert env["DLQ_TOPIC"] not in admin.list_topics()
    finally:
        admin.close()


@pytest.mark.parametrize("args,env,says", [
    ([], {"BOOTSTRAP_SERVERS": "127.0.0.1:1"}, "error: no Kafka broker answers at 127.0.0.1:1"),
    (["--serve-port", "abc"], {}, "argument --serve-port: 'abc' is not valid"),
    ([], {"SERVE_PORT": "70000"}, "SERVE_PORT='70000' is not valid"),
])
def test_serves_mistakes_are_one_line(args, env, says):
    """(A port already taken: tests/broker/test_live_page.py.)"""
    one_line_error(subprocess.run([str(REPO / "run.sh"), "serve", *args], capture_output=True, timeout=60,
                                  env={**os.environ, **env}), says)
