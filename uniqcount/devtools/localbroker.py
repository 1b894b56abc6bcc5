"""Apache Kafka (KRaft, each node broker and controller) on 127.0.0.1, without Docker: one node, or
a cluster of three (LocalCluster) with replication factor 3 and min.insync.replicas 2.

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
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from uniqcount import REPO
from uniqcount.kafka_client.probe import kafka_answers, port_in_use
from uniqcount.runtime.progress import status

if TYPE_CHECKING:
    from uniqcount.devtools.secure_listener import SecureListener

POM = REPO / "broker" / "pom.xml"
BROKER_LOG_CONFIG = REPO / "broker" / "log4j2.properties"
TOOLS_LOG_CONFIG = REPO / "broker" / "tools-log4j2.properties"
DEFAULT_HOME = REPO / ".kafka"
DEFAULT_LIB = DEFAULT_HOME / "lib"
HOST = "127.0.0.1"
TRANSACTION_LOG_PARTITIONS = 4  # of __transaction_state (Kafka's default: 50, too many for a test broker)

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


def free_ports(count: int) -> list[int]:
    """`count` distinct ports of 127.0.0.1 that nothing listens on now. They are held open together
    while chosen: one port picked, closed and picked again was handed out twice (a cluster's node
    once got another's controller port, and died on start)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass
class LocalBroker:
    """One node. Of a cluster (`voters`: the static controller quorum, `id@host:port,...`), it takes
    the cluster's id and replication; alone, it is a quorum of its own."""
    home: Path = DEFAULT_HOME
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    lib: Path = DEFAULT_LIB
    node_id: int = 1
    voters: str = ""
    cluster_id: str = ""
    replicas: int = 1
    secure: SecureListener | None = None  # a SASL_SSL listener beside the plaintext one

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
        started = time.monotonic()
        proc = self.launch()
        self.wait_ready(proc, timeout)
        if proc is None:
            return f"already running: bootstrap {self.bootstrap}, log {self.log_path}"
        return (f"started in {time.monotonic() - started:.1f} s: bootstrap {self.bootstrap}, "
                f"log {self.log_path}")

    def launch(self) -> subprocess.Popen | None:
        """The node's process started, not waited for (a cluster's nodes elect a controller only
        once a majority runs); None when it runs already."""
        if self.pid() is not None:
            return None
        command = java_command(
            "kafka.Kafka", [str(self._config)], BROKER_LOG_CONFIG,
            [f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
             f"-Dkafka.logs.dir={self.home / 'logs'}"], self.lib)
        for port in (self.port, self.controller_port, *([self.secure.port] if self.secure else [])):
            if port_in_use(HOST, port):
                raise BrokerError(f"port {port} on {HOST} is taken by another process: stop it, or choose "
                                  "another port (BOOTSTRAP_SERVERS / LOCAL_CONTROLLER_PORT in config.env)")
        self._prepare()
        with open(self._stdout, "ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.home)
        self._pid_file.write_text(str(proc.pid))
        return proc

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
        if self.secure:
            self.secure.make_certificates(self.home, HOST)
        self._config.write_text(self._properties())
        quorum = [] if self.voters else ["--standalone"]
        users = self.secure.format_arguments() if self.secure else []
        result = subprocess.run(
            java_command("kafka.tools.StorageTool",
                         ["format", *quorum, f"--cluster-id={self.cluster_id or new_cluster_id()}", *users, "-c",
                          str(self._config)], TOOLS_LOG_CONFIG, ["-Xmx256m"], self.lib),
            capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise BrokerError(f"formatting broker storage in {self._data} failed: {last[0]}")
        formatted_for.write_text(str(self.controller_port))

    def _properties(self) -> str:
        replicas, min_isr = str(self.replicas), str(min(self.replicas, 2))
        quorum = {"controller.quorum.voters": self.voters} if self.voters else \
            {"controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}"}
        secure = f",SASL_SSL://{HOST}:{self.secure.port}" if self.secure else ""
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            **quorum,
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}{secure}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}{secure}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
            "log.dirs": str(self._data),
            "num.partitions": "1",
            "default.replication.factor": replicas,
            "min.insync.replicas": min_isr,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": str(TRANSACTION_LOG_PARTITIONS),
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
            **(self.secure.properties(self.home, HOST) if self.secure else {}),
        }
        lines = ["# written by uniqcount.devtools.localbroker on every start; edit the code, not this file"]
        return "\n".join(lines + [f"{k}={v}" for k, v in settings.items()]) + "\n"

    def wait_ready(self, proc: subprocess.Popen | None, timeout: float) -> None:
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


class LocalCluster:
    """Three nodes (or more), each broker and controller, on 127.0.0.1: every topic replicated to
    three (default.replication.factor), min.insync.replicas 2, the transaction and offsets logs
    replicated the same way. Node i lives in home/node-i; the cluster's id in home/cluster.id."""

    def __init__(self, home: Path, ports: Sequence[int], controller_ports: Sequence[int], heap: str = "384m",
                 lib: Path = DEFAULT_LIB):
        if len(ports) != len(controller_ports) or len(ports) < 3:
            raise BrokerError("a cluster needs 3 nodes or more, each with a port and a controller port")
        self.home = home
        self.id_file = home / "cluster.id"
        cluster_id = self.id_file.read_text() if self.id_file.exists() else new_cluster_id()
        voters = ",".join(f"{n}@{HOST}:{port}" for n, port in enumerate(controller_ports, 1))
        self.nodes = [LocalBroker(home / f"node-{n}", port, controller_port, heap, lib, n, voters,
                                  cluster_id, min(len(ports), 3))
                      for n, (port, controller_port) in enumerate(zip(ports, controller_ports), 1)]

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self, timeout: float = 180.0) -> str:
        """Every node started together (a controller is elected once a majority runs), then waited for."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.id_file.write_text(self.nodes[0].cluster_id)
        procs = [node.launch() for node in self.nodes]
        for node, proc in zip(self.nodes, procs):
            node.wait_ready(proc, timeout)
        return f"{len(self.nodes)} nodes up in {time.monotonic() - started:.1f} s: bootstrap {self.bootstrap}"

    def stop(self, timeout: float = 30.0) -> str:
        """Every node asked at once: the last of a quorum to go cannot hand its work to the others."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            done = list(pool.map(lambda node: node.stop(timeout), self.nodes))
        return "; ".join(f"node {node.node_id}: {line}" for node, line in zip(self.nodes, done))

    def running(self) -> bool:
        return any(node.pid() is not None for node in self.nodes)

    def pid(self) -> int | None:
        """Node 1's pid while every node runs."""
        pids = [node.pid() for node in self.nodes]
        return None if None in pids else pids[0]

    def answers(self) -> bool:
        return all(node.answers() for node in self.nodes)

    @property
    def log_path(self) -> Path:
        return self.nodes[0].log_path

    def status(self) -> str:
        return "\n".join(f"node {node.node_id}: {node.status()}" for node in self.nodes)
