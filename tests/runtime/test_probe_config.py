"""Unit tests: bootstrap parsing, the Kafka probe against things that are not Kafka, settings precedence."""
from __future__ import annotations

import argparse
import socket
import threading
from pathlib import Path

import pytest

from tests.helpers import script
from uniqcount import REPO
from uniqcount.cli import consumer as consumer_cli
from uniqcount.cli import producer as producer_cli
from uniqcount.cli import serve as serve_cli
from uniqcount.devtools.localbroker import free_ports
from uniqcount.kafka_client.probe import is_local, kafka_answers, parse_servers
from uniqcount.runtime import config


def test_parse_servers():
    assert parse_servers("localhost:9092") == [("localhost", 9092)]
    assert parse_servers(" a:1, b:2 ,") == [("a", 1), ("b", 2)]
    assert parse_servers("[::1]:9092") == [("::1", 9092)]
    for bad in ("localhost", "a:b", "", ","):
        with pytest.raises(ValueError):
            parse_servers(bad)


def test_is_local():
    assert is_local("localhost:9092,127.0.0.1:9093,[::1]:1")
    assert not is_local("localhost:9092,kafka.example.com:9092")
    assert not is_local("broker.invalid:9092")


def test_probe_closed_port_is_not_kafka():
    assert not kafka_answers("127.0.0.1", free_ports(1)[0], timeout=1)


def _serve_once(reply: bytes) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer():
        conn, _ = server.accept()
        with conn, server:
            conn.recv(1024)
            conn.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


@pytest.mark.parametrize("reply", [b"HTTP/1.1 400 Bad Request\r\n\r\n", b"", b"\x00\x00\x00\x06\x00\x00\x00\x01\x00\x00"])
def test_probe_other_servers_are_not_kafka(reply):
    # an HTTP server, one that hangs up, one that answers a wrong correlation id
    assert not kafka_answers("127.0.0.1", _serve_once(reply), timeout=1)


def test_precedence_flag_env_file_default(tmp_path: Path):
    env_file = tmp_path / "config.env"
    env_file.write_text("# comment\nBOOTSTRAP_SERVERS=file:1\nLOCAL_CONTROLLER_PORT=1111\n")
    assert config.load(env_file, {}).local_broker_heap == config.SETTINGS["LOCAL_BROKER_HEAP"].default
    assert config.load(env_file, {}).bootstrap_servers == "file:1"
    assert config.load(env_file, {"BOOTSTRAP_SERVERS": "env:2"}).bootstrap_servers == "env:2"
    flagged = config.load(env_file, {"BOOTSTRAP_SERVERS": "env:2"}, {"BOOTSTRAP_SERVERS": "flag:3"})
    assert flagged.bootstrap_servers == "flag:3"
    assert flagged.local_controller_port == 1111


def test_bad_settings_are_one_line_errors(tmp_path: Path):
    env_file = tmp_path / "config.env"
    env_file.write_text("BOOTSTRAP_SERVER=typo:1\n")
    with pytest.raises(SystemExit, match="unknown setting.*BOOTSTRAP_SERVER"):
        config.load(env_file, {})
    env_file.write_text("LOCAL_CONTROLLER_PORT=abc\n")
    with pytest.raises(SystemExit, match="LOCAL_CONTROLLER_PORT='abc' is not valid"):
        config.load(env_file, {})


def test_a_bad_flag_says_why(capsys):
    parser = argparse.ArgumentParser()
    config.add_flags(parser, ["GRANULARITIES", "EXACT_UP_TO", "HLL_LG_K"])
    for flag, value, why in [("--granularities", "minute,fortnight", "must be some of minute, hour"),
                             ("--exact-up-to", "days", "expected one of minute, hour"),
                             ("--hll-lg-k", "30", "lg_k from 4 to 21")]:
        with pytest.raises(SystemExit):
            parser.parse_args([flag, value])
        err = capsys.readouterr().err
        assert f"{flag}: '{value}' is not valid" in err and why in err
    parsed = parser.parse_args(["--granularities", "day, minute", "--hll-lg-k", "12"])
    assert [g.name for g in parsed.GRANULARITIES] == ["minute", "day"] and parsed.HLL_LG_K == 12


def test_config_env_documents_every_setting():
    text = config.DEFAULT_CONFIG_FILE.read_text()
    lines = text.splitlines()
    for name, setting in config.SETTINGS.items():
        (index,) = [i for i, line in enumerate(lines) if line.startswith(f"{name}=")]
        assert lines[index - 1].startswith("#"), f"{name} in config.env has no comment above it"
        assert lines[index] == f"{name}={setting.default}", f"config.env and the default of {name} differ"


def script_flags() -> set[str]:
    return {flag for cli in (consumer_cli, producer_cli, serve_cli) for action in cli.build_parser()._actions
            for flag in action.option_strings}


def test_readme_lists_every_setting_with_the_flag_of_a_script_that_uses_it():
    """A flag in the table is one a script accepts; a setting without one says it is ./run.sh's."""
    rows = {line.split(" | ")[0].strip("| `"): line for line in (REPO / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    flags = script_flags()
    for name, setting in config.SETTINGS.items():
        row = rows[name]
        if setting.flag in flags:
            assert row.startswith(f"| `{name}` | `{setting.flag}` | `{setting.default}` |"), name
        elif setting.secret:  # no flag: a command line is visible to every user of the machine
            assert row.startswith(f"| `{name}` | — | `{setting.default}` |") and "no flag" in row, name
        else:
            assert row.startswith(f"| `{name}` | — | `{setting.default}` |") and "./run.sh" in row, name


@pytest.mark.parametrize("name, shown", [("producer.py", b"[BOOTSTRAP_SERVERS=localhost:9092, from config.env]"),
                                         ("consumer.py", b"(estimate and 95% bounds)")])
def test_help_works(name, shown):
    """argparse formats help text with %: a literal % in a setting's help once broke --help."""
    done = script(name, "--help")
    assert done.returncode == 0, done.stderr.decode()
    assert shown in b" ".join(done.stdout.split())


def test_help_shows_the_values_in_force_and_where_they_come_from(tmp_path: Path):
    path = tmp_path / "mine.env"
    path.write_text("TOPIC=from-my-file\nHLL_LG_K=12\n")
    done = script("consumer.py", "--help", env={"UNIQCOUNT_CONFIG": str(path), "HLL_LG_K": "16"})
    shown = b" ".join(done.stdout.split())
    assert b"[TOPIC=from-my-file, from mine.env]" in shown
    assert b"[HLL_LG_K=16, from environment]" in shown
    assert b"[OUTLIER_JUMP=600, from default]" in shown
