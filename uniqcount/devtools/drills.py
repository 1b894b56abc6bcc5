"""Fault drills on a local cluster of three (localbroker.LocalCluster): each loads a sample, paced,
into a topic of four partitions that two consumers of one group count (started alike, a checkpoint
every second), injects one fault, drains the consumers, and holds the output to the sample's truth
file: every granularity exact (EXACT_UP_TO=year), no record twice, each window's revisions 0, 1,
2, ... It measures how long the output stalled (the longest time the output topic's last stable
offset stood still from the load's start until the group had committed the whole input; a stall
through a time the drill left the cluster below min.insync.replicas counts from its end) and keeps
what the consumers and the producer said after the start.

    python -m uniqcount.devtools.drills [--only NAME ...]    # every drill: the table of docs/FAILURES.md

tests/broker/test_cluster.py runs some of them; the rest run here, by hand (about 2 minutes each).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from uniqcount import REPO
from uniqcount.devtools.localbroker import (
    TOOLS_LOG_CONFIG,
    TRANSACTION_LOG_PARTITIONS,
    LocalBroker,
    LocalCluster,
    free_ports,
    java_command,
)
from uniqcount.kafka_client.kafka_io import read_topic

SAMPLE = REPO.parent / "shared" / "data" / "sample-late.jsonl.gz"
PYTHON = str(REPO / ".venv" / "bin" / "python")
RATE = "20"  # times event-time speed: the late sample's 9 minutes in about 30 s
STATUS_LINE = re.compile(r"consumer: [\d,]+ frames")  # the periodic one: its outage part is said elsewhere
SAID = ("unreachable", "reachable again", "moving", "going on from the last checkpoint", "fenced", "error:",
        "transactions not started")


def new_cluster(home: Path) -> LocalCluster:
    ports = free_ports(6)
    return LocalCluster(home, ports[:3], ports[3:])


def transaction_log_partition(transactional_id: str, partitions: int) -> int:
    """Where the broker keeps a transactional id: Utils.abs(String.hashCode) % partitions."""
    data, h = transactional_id.encode("utf-16-be"), 0
    for i in range(0, len(data), 2):  # String.hashCode runs over UTF-16 code units
        h = (31 * h + int.from_bytes(data[i:i + 2], "big")) & 0xFFFFFFFF
    signed = h - (1 << 32) if h >= 1 << 31 else h
    return (0 if signed == -(1 << 31) else abs(signed)) % partitions


@dataclass
class Run:
    """One drill's cluster, settings, consumers and producer, and when the output moved."""
    cluster: LocalCluster
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    consumers: dict[str, subprocess.Popen] = field(default_factory=dict)
    producer: subprocess.Popen | None = None
    moved: list[float] = field(default_factory=list)  # time.monotonic() of each change of the output's end
    faults: list[tuple[float, str]] = field(default_factory=list)
    unwritable: list[tuple[float, float]] = field(default_factory=list)  # the fault left fewer than min.insync.replicas

    def say(self, what: str) -> None:
        now = time.monotonic()
        self.faults.append((now, what))
        print(f"drill: {what} ({now - self.faults[0][0]:.1f} s in)", file=sys.stderr)

    def node(self, node_id: int) -> LocalBroker:
        return self.cluster.nodes[node_id - 1]

    def leader(self, topic: str, partition: int = 0) -> int:
        admin = KafkaAdminClient(bootstrap_servers=self.cluster.bootstrap)
        try:
            (described,) = admin.describe_topics([topic])
        finally:
            admin.close()
        return next(int(p["leader_id"]) for p in described["partitions"] if p["partition_index"] == partition)

    def coordinator(self, consumer: str) -> int:
        """The node that leads the transaction log partition of this consumer's transactional id."""
        log = (self.workdir / f"{consumer}.log").read_text()
        transactional_id = log.split("in one transaction (id ", 1)[1].split(")", 1)[0]
        return self.leader("__transaction_state", transaction_log_partition(transactional_id, TRANSACTION_LOG_PARTITIONS))

    def kill(self, node_id: int) -> None:
        pid = self.node(node_id).pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        self.say(f"node {node_id} SIGKILLed")

    def start(self, node_id: int) -> None:
        node = self.node(node_id)
        node.wait_ready(node.launch(), 120)
        self.say(f"node {node_id} back")

    def stop(self, node_id: int) -> None:
        self.node(node_id).stop()
        self.say(f"node {node_id} stopped (SIGTERM)")

    def writable(self) -> bool:
        """Every partition the run writes (the transaction and offsets logs' too) has a leader and
        min.insync.replicas (2) in sync: acks=all writes are taken again."""
        topics = [self.env["OUTPUT_TOPIC"], f"{self.env['OUTPUT_TOPIC']}-partials", self.env["DLQ_TOPIC"],
                  f"{self.env['CONSUMER_GROUP']}-state", "__transaction_state", "__consumer_offsets"]
        try:
            admin = KafkaAdminClient(bootstrap_servers=self.cluster.bootstrap, request_timeout_ms=5000)
        except KafkaError:
            return False
        try:
            described = admin.describe_topics(topics)
        except KafkaError:
            return False
        finally:
            admin.close()
        return all(p["leader_id"] >= 0 and len(p["isr_nodes"]) >= 2 for t in described for p in t["partitions"])

    def controller_leader(self) -> int:
        """The KRaft quorum's leader, as its own tool says."""
        out = subprocess.run(java_command("org.apache.kafka.tools.MetadataQuorumCommand",
                                          ["--bootstrap-server", self.cluster.bootstrap, "describe", "--status"],
                                          TOOLS_LOG_CONFIG, ["-Xmx256m"], self.cluster.nodes[0].lib),
                             capture_output=True, text=True, timeout=60).stdout
        return int(next(line.split(":")[1] for line in out.splitlines() if line.startswith("LeaderId")))


def _watch(run: Run, stop: threading.Event) -> None:
    """The output topic's last stable offset, every 0.25 s: when it moved."""
    reader = KafkaConsumer(bootstrap_servers=run.cluster.bootstrap, isolation_level="read_committed",
                           metadata_max_age_ms=2000, request_timeout_ms=5000)
    tp, last = TopicPartition(run.env["OUTPUT_TOPIC"], 0), None
    try:
        while not stop.is_set():
            try:
                end = reader.end_offsets([tp], timeout_ms=2000)[tp]
            except Exception:  # noqa: BLE001 - a node away: the output did not move, that is all
                end = last
            if end != last:
                run.moved.append(time.monotonic())
                last = end
            stop.wait(0.25)
    finally:
        reader.close()


@dataclass
class Drill:
    name: str
    what: str
    fault: Callable[[Run], None]  # runs while the load is under way (it starts ~10 s in)


@dataclass
class Result:
    name: str
    what: str
    exact: bool
    duplicates: int
    stall: float  # seconds, the longest the output stood still (once the cluster took writes) until the whole input was committed
    seconds: float
    said: list[str]
    problem: str = ""


def no_open_transaction(bootstrap: str, topic: str, timeout: float = 60) -> float:
    """Seconds until no transaction is open on the topic (its read_committed end is its end): a
    read_committed read before that misses what comes after the open one."""
    tp, began = TopicPartition(topic, 0), time.monotonic()
    readers = [KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level)
               for level in ("read_committed", "read_uncommitted")]
    try:
        while len({reader.end_offsets([tp])[tp] for reader in readers}) > 1:
            if time.monotonic() - began > timeout:
                break
            time.sleep(0.5)
    finally:
        for reader in readers:
            reader.close()
    return time.monotonic() - began


def check(bootstrap: str, env: dict[str, str], sample: Path) -> tuple[bool, int, str]:
    """(exact at every granularity, records twice or revisions out of order, what differs)."""
    truth = {(t["granularity"], t["start"]): (t["unique"], t["frames"])
             for t in map(json.loads, sample.with_name(sample.name.replace(".jsonl.gz", ".truth.jsonl")).open())
             if t["granularity"] != "rejected"}
    revisions: dict[tuple[str, int], list[int]] = defaultdict(list)
    latest: dict[tuple[str, int], tuple[int, int]] = {}
    for message in read_topic(bootstrap, env["OUTPUT_TOPIC"]):
        record = json.loads(message.value)
        if record["final"]:
            key = (record["granularity"], record["window_start"])
            revisions[key].append(record["revision"])
            latest[key] = (record["unique_users"], record["frames"])
    duplicates = sum(len(r) - len(set(r)) + (sorted(set(r)) != list(range(len(set(r))))) for r in revisions.values())
    wrong = sorted(k for k in truth.keys() | latest.keys() if truth.get(k) != latest.get(k))
    shown = ", ".join(f"{k}: {latest.get(k)} for the truth's {truth.get(k)} (users, frames)" for k in wrong[:3])
    return not wrong, duplicates, f"{len(wrong)} windows differ: {shown}" if wrong else ""


def run_drill(cluster: LocalCluster, drill: Drill, workdir: Path, sample: Path = SAMPLE) -> Result:
    """One drill on a running cluster; the cluster is whole again at the end."""
    workdir.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    run = Run(cluster, workdir, {
        "BOOTSTRAP_SERVERS": cluster.bootstrap, "TOPIC": f"events-{tag}", "OUTPUT_TOPIC": f"out-{tag}",
        "DLQ_TOPIC": f"dlq-{tag}", "CONSUMER_GROUP": f"group-{tag}", "TOPIC_PARTITIONS": "4",
        "CHECKPOINT_SECONDS": "1", "SESSION_TIMEOUT_MS": "6000", "EXACT_UP_TO": "year", "STATUS_INTERVAL": "5",
        "BROKER_WAIT_SECONDS": "300"})
    env = {**os.environ, **run.env}
    began = time.monotonic()
    subprocess.run([PYTHON, "-m", "uniqcount.devtools.brokerctl", "topics"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    for name in ("c0", "c1"):
        run.consumers[name] = subprocess.Popen([PYTHON, "consumer.py", "--quiet"], cwd=REPO, env=env,
                                               stderr=open(workdir / f"{name}.log", "wb"))
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(run, stop), daemon=True)
    watcher.start()
    try:
        _wait_for(lambda: all("counts partition" in (workdir / f"{n}.log").read_text() for n in run.consumers), 90)
        time.sleep(3)  # the rebalance of the second one's joining settled
        before = {log.name: log.stat().st_size for log in workdir.glob("*.log")}  # what the start said
        run.producer = subprocess.Popen([PYTHON, "producer.py", "--input", str(sample), "--rate", RATE],
                                        cwd=REPO, env=env,
                                        stderr=open(workdir / "producer.log", "wb"))
        loading = time.monotonic()
        time.sleep(10)
        drill.fault(run)
        run.producer.wait(timeout=600)  # its exit code: a drill may have killed it (and resumed it)
        _wait_for(lambda: caught_up(run), 900, "the consumers did not catch up with the input")
        loaded = time.monotonic()
        for node in cluster.nodes:  # whole again before the drain
            if node.pid() is None:
                run.start(node.node_id)
        for process in run.consumers.values():
            process.send_signal(signal.SIGUSR1)
        codes = [process.wait(timeout=600) for process in run.consumers.values()]
    finally:
        stop.set()
        for process in [*run.consumers.values(), *([run.producer] if run.producer else [])]:
            if process.poll() is None:
                process.kill()
    watcher.join()
    moved = [t for t in run.moved if loading <= t <= loaded] + [loaded]
    stall = max((still(a, b, run.unwritable) for a, b in zip([loading, *moved], moved)), default=0.0)
    open_for = no_open_transaction(cluster.bootstrap, run.env["OUTPUT_TOPIC"])
    exact, duplicates, problem = check(cluster.bootstrap, run.env, sample)
    if open_for > 1:
        problem = f"a transaction stayed open on the output {open_for:.0f} s after the drain; " + problem
    if any(codes):
        problem = f"consumer exit codes {codes}; " + problem
    said = sorted({re.sub(r"\d[\d,.]*", "N", line.strip()) for log in workdir.glob("*.log")
                   for line in log.read_bytes()[before.get(log.name, 0):].decode(errors="replace").splitlines()
                   if any(word in line for word in SAID) and not STATUS_LINE.match(line)})
    return Result(drill.name, drill.what, exact and not any(codes), duplicates, stall, time.monotonic() - began, said, problem)


def still(began: float, ended: float, unwritable: list[tuple[float, float]]) -> float:
    """Seconds the output stood still between two moves, counted from when the cluster took writes
    again (its partitions' ISRs back to min.insync.replicas) if it could not meanwhile: what the
    issue bounds is the recovery once the brokers are back."""
    back = max((b for a, b in unwritable if a < ended and b > began), default=began)
    return max(0.0, ended - max(began, back))


def _wait_for(condition: Callable[[], bool], timeout: float, what: str = "the consumers did not join") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(0.5)


def caught_up(run: Run) -> bool:
    """The group's committed offsets are the input's end offsets: whatever stalled is over."""
    reader = KafkaConsumer(bootstrap_servers=run.cluster.bootstrap, group_id=run.env["CONSUMER_GROUP"],
                           enable_auto_commit=False)  # never subscribes: it reads the group's offsets only
    try:
        inputs = [TopicPartition(run.env["TOPIC"], p) for p in range(4)]
        ends = reader.end_offsets(inputs)
        return all((reader.committed(tp) or 0) >= ends[tp] for tp in inputs)
    except KafkaError:  # a node away: not known yet
        return False
    finally:
        reader.close()


def _down_then_back(node: Callable[[Run], int], down: float) -> Callable[[Run], None]:
    def fault(run: Run) -> None:
        chosen = node(run)
        run.kill(chosen)
        time.sleep(down)
        run.start(chosen)
    return fault


def _two_down(run: Run) -> None:
    """Two nodes down 30 s each, one after the other (below min.insync.replicas meanwhile)."""
    first, second = 1, 2
    run.kill(first)
    time.sleep(15)
    run.kill(second)
    below = time.monotonic()
    time.sleep(15)
    run.start(first)
    _wait_for(run.writable, 120, "the cluster did not take writes again")
    run.say("the cluster takes writes again (min.insync.replicas in sync everywhere)")
    run.unwritable.append((below, time.monotonic()))
    time.sleep(15)
    run.start(second)


def _rolling_restart(run: Run) -> None:
    for node in run.cluster.nodes:
        run.stop(node.node_id)
        run.start(node.node_id)


def _down_for_good(run: Run) -> None:
    run.kill(run.leader(run.env["OUTPUT_TOPIC"]))  # brought back only for the drain


def _zombie(run: Run) -> None:
    process = run.consumers["c1"]
    process.send_signal(signal.SIGSTOP)
    run.say("consumer c1 SIGSTOPped")
    time.sleep(15)
    process.send_signal(signal.SIGCONT)
    run.say("consumer c1 SIGCONTinued")


def _joins(run: Run) -> None:
    run.consumers["c2"] = subprocess.Popen([PYTHON, "consumer.py", "--quiet"], cwd=REPO,
                                           env={**os.environ, **run.env}, stderr=open(run.workdir / "c2.log", "wb"))
    run.say("consumer c2 joins")


def _leaves(run: Run) -> None:
    process = run.consumers.pop("c1")
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    run.say("consumer c1 stopped (SIGTERM)")


def _producer_killed(run: Run) -> None:
    assert run.producer is not None
    run.producer.kill()
    run.producer.wait()
    run.say("producer.py SIGKILLed")
    run.producer = subprocess.Popen([PYTHON, "producer.py", "--input", str(SAMPLE), "--resume"], cwd=REPO,
                                    env={**os.environ, **run.env}, stderr=open(run.workdir / "producer.log", "ab"))
    run.say("producer.py --resume")


DRILLS = [
    Drill("none", "no fault (what the output's pace is without one)", lambda run: None),
    Drill("input-leader", "the leader of input partition 0 SIGKILLed, back after 15 s",
          _down_then_back(lambda run: run.leader(run.env["TOPIC"]), 15)),
    Drill("output-leader", "the leader of the output partition SIGKILLed, back after 15 s",
          _down_then_back(lambda run: run.leader(run.env["OUTPUT_TOPIC"]), 15)),
    Drill("state-leader", "the leader of state partition 0 SIGKILLed, back after 15 s",
          _down_then_back(lambda run: run.leader(run.env["CONSUMER_GROUP"] + "-state"), 15)),
    Drill("partials-leader", "the leader of the partials partition SIGKILLed, back after 15 s",
          _down_then_back(lambda run: run.leader(run.env["OUTPUT_TOPIC"] + "-partials"), 15)),
    Drill("coordinator", "the transaction coordinator of consumer c0 SIGKILLed, back after 15 s",
          _down_then_back(lambda run: run.coordinator("c0"), 15)),
    Drill("one-for-good", "the output partition's leader SIGKILLed and left down (2 of 3 for the rest of the load)",
          _down_for_good),
    Drill("two-down", "two nodes down 30 s each, one after the other (15 s below min.insync.replicas)", _two_down),
    Drill("rolling-restart", "each node stopped (SIGTERM) and started again in turn", _rolling_restart),
    Drill("quorum-leader", "the KRaft quorum's leader SIGKILLed, back after 15 s",
          _down_then_back(Run.controller_leader, 15)),
    Drill("zombie-consumer", "consumer c1 SIGSTOPped for 15 s (past its 6 s session), then resumed", _zombie),
    Drill("consumer-joins", "a third consumer started mid-load", _joins),
    Drill("consumer-leaves", "consumer c1 stopped mid-load (SIGTERM)", _leaves),
    Drill("producer-killed", "producer.py SIGKILLed mid-load, then producer.py --resume", _producer_killed),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uniqcount.devtools.drills", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", choices=[d.name for d in DRILLS], help="these drills only")
    args = parser.parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="uniqcount-drills-"))
    cluster = new_cluster(home / "cluster")
    print(f"drills: {cluster.start()}", file=sys.stderr)
    rows = []
    try:
        for drill in DRILLS:
            if args.only and drill.name not in args.only:
                continue
            result = run_drill(cluster, drill, home / drill.name)
            print(f"drills: {json.dumps(result.__dict__)}", file=sys.stderr, flush=True)
            rows.append(result)
    finally:
        cluster.stop()
    print(table(rows))
    return 0 if all(r.exact and not r.duplicates for r in rows) else 1


def table(rows: list[Result]) -> str:
    """The markdown table of docs/FAILURES.md: fault, result, stall, what the consumers and the
    producer said (numbers as N)."""
    lines = ["| drill | exact, no record twice | output still for | said (besides the status line) |",
             "|---|---|---|---|"]
    for r in rows:
        verdict = f"yes{f' ({r.problem})' if r.problem else ''}" if r.exact and not r.duplicates else \
            f"**no**: {r.duplicates} twice; {r.problem}"
        said = "<br>".join(f"`{line}`" for line in r.said) or "nothing"
        lines.append(f"| {r.name}: {r.what} | {verdict} | {r.stall:.1f} s | {said} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
