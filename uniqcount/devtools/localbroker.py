"""A single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1, without Docker.

The jars are Apache Kafka's own, resolved from Maven Central by `broker/pom.xml` into
`.kafka/lib` once (or taken from an installed Kafka named by KAFKA_HOME). Each broker instance lives
in one folder (config, data, logs, pid file), so tests can run a throwaway one beside the user's.
Every failure a user can meet is a BrokerError with one line that says what to do.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from uniqcount import REPO
from uniqcount.kafka_client.probe import kafka_answers, port_in_use
from uniqcount.runtime.progress import status

POM = REPO / "broker" / "pom.xml"
BROKER_LOG_CONFIG = REPO / "broker" / "log4j2.properties"
TOOLS_LOG_CONFIG = REPO / "broker" / "tools-log4j2.properties"
DEFAULT_HOME = REPO / ".kafka"
DEFAULT_LIB = DEFAULT_HOME / "lib"
HOST = "127.0.0.1"

TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
}


class BrokerError(Exception):
    """A problem the user can fix; str() is the one line to show them."""


def kafka_version() -> str:
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    assert match, f"{POM} declares no kafka.version"
    return match.group(1)


def require_java() -> str:
    java = shutil.which("java")
    if not java:
        raise BrokerError("Java not found: install a JRE 17+ (apt-get install openjdk-17-jre-headless), "
                          "or run Kafka with Docker (docker compose up -d)")
    return java


def classpath(lib: Path = DEFAULT_LIB) -> str:
    """The Kafka jars: KAFKA_HOME/libs if set, else fetched once from Maven Central into `lib`."""
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        libs = Path(kafka_home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"KAFKA_HOME={kafka_home} holds no Kafka jars in libs/: "
                              "point it at an unpacked Apache Kafka, or unset it")
        return f"{libs}/*"
    stamp = lib / ".pom-sha256"
    want = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == want):
        _fetch_jars(lib, stamp, want)
    return f"{lib}/*"


def _fetch_jars(lib: Path, stamp: Path, digest: str) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise BrokerError("no Kafka jars yet and Maven not found: install Maven (apt-get install maven), "
                          "set KAFKA_HOME to an unpacked Apache Kafka, or use Docker (docker compose up -d)")
    status(f"fetching Apache Kafka {kafka_version()} jars from Maven Central into {lib} (once) ...")
    staging = lib.with_name(lib.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}"], capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
        raise BrokerError(f"Maven could not fetch the Kafka jars: {last[0]}")
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    stamp.write_text(digest)


def java_command(main_class: str, args: list[str], log_config: Path, jvm: Sequence[str] = (),
                 lib: Path = DEFAULT_LIB) -> list[str]:
    return [require_java(), *jvm, f"-Dlog4j2.configurationFile={log_config}",
            "-cp", classpath(lib), main_class, *args]


def tool_command(name: str, args: list[str], bootstrap: str) -> list[str]:
    """A Kafka console tool, pointed at `bootstrap` unless the caller names a server."""
    if name not in TOOLS:
        raise BrokerError(f"unknown tool {name}; known: {', '.join(TOOLS)}")
    if "--bootstrap-server" not in args:
        args = ["--bootstrap-server", bootstrap, *args]
    return java_command(TOOLS[name], args, TOOLS_LOG_CONFIG, ["-Xmx256m"])


def new_cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64. Like Kafka's own Uuid.randomUuid, it never
    starts with '-', which command-line parsers would take for an option (1 id in 64 otherwise)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass
class LocalBroker:
    home: Path = DEFAULT_HOME
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    lib: Path = DEFAULT_LIB

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / "server.log"

    @property
    def _config(self) -> Path:
        return self.home / "server.properties"

    @property
    def _data(self) -> Path:
        return self.home / "data"

    @property
    def _pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def _stdout(self) -> Path:
        return self.home / "logs" / "stdout.log"

    def pid(self) -> int | None:
        """The pid of this instance's broker if it is alive (and really is ours)."""
        try:
            pid = int(self._pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        return pid if "kafka.Kafka" in cmdline and str(self._config) in cmdline else None

    def answers(self) -> bool:
        return kafka_answers(HOST, self.port, timeout=1.0)

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "not running"
        state = "running" if self.answers() else "started but not answering yet"
        return f"{state}: pid {pid}, bootstrap {self.bootstrap}, log {self.log_path}"

    def start(self, timeout: float = 120.0) -> str:
        """Start (or find running) and wait until clients are accepted; returns what happened."""
        if self.pid() is not None:
            self._wait_ready(None, timeout)
            return f"already running: bootstrap {self.bootstrap}, log {self.log_path}"
        command = java_command(
            "kafka.Kafka", [str(self._config)], BROKER_LOG_CONFIG,
            [f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             f"-Dkafka.logs.dir={self.home / 'logs'}"], self.lib)
        for port in (self.port, self.controller_port):
            if port_in_use(HOST, port):
                raise BrokerError(f"port {port} on {HOST} is taken by another process: stop it, or choose "
                                  "another port (BOOTSTRAP_SERVERS / LOCAL_CONTROLLER_PORT in config.env)")
        self._prepare()
        started = time.monotonic()
        with open(self._stdout, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.home)
        self._pid_file.write_text(str(proc.pid))
        self._wait_ready(proc, timeout)
        return (f"started in {time.monotonic() - started:.1f} s: bootstrap {self.bootstrap}, "
                f"log {self.log_path}")

    def stop(self, timeout: float = 60.0) -> str:
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return "not running"
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pid() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        how = "stopped"
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            how = "killed (did not stop within {:.0f} s)".format(timeout)
        self._pid_file.unlink(missing_ok=True)
        return f"{how}: pid {pid}"

    def _prepare(self) -> None:
        """Write the config and format storage on first start; a later start reuses the data."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        formatted_for = self.home / "controller.port"
        if (self._data / "meta.properties").exists():
            if formatted_for.exists() and formatted_for.read_text() != str(self.controller_port):
                raise BrokerError(
                    f"the broker data in {self._data} belongs to controller port {formatted_for.read_text()}, "
                    f"not {self.controller_port}: use that port, or delete {self._data} to start empty")
            self._config.write_text(self._properties())
            return
        self._config.write_text(self._properties())
        result = subprocess.run(
            java_command("kafka.tools.StorageTool",
                         ["format", "--standalone", f"--cluster-id={new_cluster_id()}", "-c", str(self._config)],
                         TOOLS_LOG_CONFIG, ["-Xmx256m"], self.lib),
            capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise BrokerError(f"formatting broker storage in {self._data} failed: {last[0]}")
        formatted_for.write_text(str(self.controller_port))

    def _properties(self) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self._data),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
        }
        lines = ["# written by uniqcount.devtools.localbroker on every start; edit the code, not this file"]
        return "\n".join(lines + [f"{k}={v}" for k, v in settings.items()]) + "\n"

    def _wait_ready(self, proc: subprocess.Popen | None, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if proc is not None and proc.poll() is not None:
                self._pid_file.unlink(missing_ok=True)
                raise BrokerError(f"the broker exited during start-up (code {proc.returncode}): "
                                  f"{self._last_error()}")
            if proc is None and self.pid() is None:
                raise BrokerError(f"the broker died during start-up: {self._last_error()}")
            time.sleep(0.2)
        raise BrokerError(f"the broker did not accept clients within {timeout:.0f} s - see {self.log_path}")

    def _last_error(self) -> str:
        """The most telling log line (the last ERROR or exception, else the last line) and its file."""
        found = ""
        for path in (self.log_path, self._stdout):
            lines = path.read_text(errors="replace").splitlines()[-400:] if path.exists() else []
            errors = [line for line in lines if " ERROR " in line or "Exception" in line
                      or line.startswith(("Error", "Invalid"))]
            if errors or (lines and not found):
                found = f"{(errors or lines)[-1].strip()[:300]} - see {path}"
        return found or f"no log output - see {self.log_path}"
