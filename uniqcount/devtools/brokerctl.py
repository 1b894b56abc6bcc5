"""`./run.sh broker ...` and the broker choice of `./run.sh`.

Choice: the broker named in config.env if it answers; else Docker Compose if a Docker engine runs;
else the local broker, or the local cluster of three when BOOTSTRAP_SERVERS names three ports of
this machine (`./run.sh broker start --nodes 3` prints that list). A non-local BOOTSTRAP_SERVERS
that does not answer is an error: nothing is started behind the back of a user who pointed
config.env elsewhere.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from uniqcount import REPO
from uniqcount.devtools.console_tools import run_tool
from uniqcount.devtools.localbroker import TOOLS, BrokerError, LocalBroker, LocalCluster
from uniqcount.kafka_client.kafka_io import create_topics
from uniqcount.kafka_client.probe import any_answers, is_local, parse_servers, why_not
from uniqcount.kafka_client.rights import NotAllowed
from uniqcount.kafka_client.security import tls_context
from uniqcount.runtime import config
from uniqcount.runtime.config import Settings
from uniqcount.runtime.progress import error, status


def local_broker(settings: Settings, nodes: int = 0) -> LocalBroker | LocalCluster:
    """The project's local broker, on the port BOOTSTRAP_SERVERS names when that is this machine; of
    `nodes` (0: as many as BOOTSTRAP_SERVERS names here, 3 or more make a cluster), a cluster on
    those ports, or on every second port from the first (controllers: from LOCAL_CONTROLLER_PORT)."""
    local = is_local(settings.bootstrap_servers)
    ports = [port for _, port in parse_servers(settings.bootstrap_servers)] if local else [9092]
    nodes = nodes or (len(ports) if len(ports) >= 3 else 1)
    home = REPO / settings.local_broker_dir
    if nodes == 1:
        return LocalBroker(home=home, port=ports[0], controller_port=settings.local_controller_port,
                           heap=settings.local_broker_heap)
    if len(ports) != nodes:
        ports = [ports[0] + 2 * n for n in range(nodes)]
    controllers = [settings.local_controller_port + 2 * n for n in range(nodes)]
    return LocalCluster(home / "cluster", ports, controllers, heap=settings.local_broker_heap)


def the_other(settings: Settings, broker: LocalBroker | LocalCluster) -> LocalBroker | LocalCluster | None:
    """The local cluster when `broker` is the one node, or the other way round, if it runs."""
    other = local_broker(settings, 1 if isinstance(broker, LocalCluster) else 3)
    running = other.running() if isinstance(other, LocalCluster) else other.pid() is not None
    return other if running else None


def docker_engine_running() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure(settings: Settings, allow_docker: bool = True) -> LocalBroker | LocalCluster | None:
    """Make sure a broker answers at BOOTSTRAP_SERVERS; returns the local broker if this started it."""
    bootstrap, tls = settings.bootstrap_servers, tls_context(settings)
    if any_answers(bootstrap, tls=tls):
        status(f"broker: using {bootstrap} (BOOTSTRAP_SERVERS), it answers")
        return None
    why = why_not(bootstrap, tls)
    if not why.startswith("no Kafka broker answers"):  # something answers, but not as the settings say
        raise BrokerError(why)
    if not is_local(bootstrap):
        raise BrokerError(f"the broker {bootstrap} named by BOOTSTRAP_SERVERS does not answer; "
                          "not starting a local one in its place (fix config.env or the broker)")
    if allow_docker and docker_engine_running():
        status("broker: none answers; starting Kafka with Docker Compose (docker compose up -d --wait)")
        result = subprocess.run(["docker", "compose", "up", "-d", "--wait"], cwd=REPO)
        if result.returncode != 0:
            raise BrokerError("docker compose up failed; see: docker compose logs kafka")
        return None
    broker = local_broker(settings)
    status(f"broker: none answers at {bootstrap}; starting the local Kafka (no Docker engine) ...")
    status(f"broker: {broker.start()}")
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./run.sh broker", description="The local Apache Kafka broker (no Docker needed).")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the local broker (idempotent) and wait until it answers")
    start.add_argument("--nodes", type=int, choices=[1, 3], default=0,
                       help="3: a KRaft cluster of three on 127.0.0.1 (replication 3, min.insync.replicas 2)")
    sub.add_parser("stop", help="stop the local broker this project started")
    sub.add_parser("status", help="is the local broker running? exit 0 if it answers, 3 if not")
    logs = sub.add_parser("logs", help="show the local broker's log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep following the log")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many last lines (default 50)")
    sub.add_parser("ensure", help="make a broker answer at BOOTSTRAP_SERVERS: configured, Docker, or local")
    sub.add_parser("topics", help="create the input and output topics (emptied first per RESET_TOPICS)")
    tool = sub.add_parser("tool", help=f"run a Kafka console tool: {', '.join(TOOLS)}")
    tool.add_argument("name", choices=sorted(TOOLS))
    tool.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    settings = config.load()
    try:
        broker = local_broker(settings, getattr(args, "nodes", 0))
        if args.command == "start":
            ports = sorted(port for _, port in parse_servers(settings.bootstrap_servers))
            if not is_local(settings.bootstrap_servers) or ports != sorted(p for _, p in parse_servers(broker.bootstrap)):
                status(f"note: BOOTSTRAP_SERVERS={settings.bootstrap_servers}: the scripts will use that; "
                       f"set BOOTSTRAP_SERVERS={broker.bootstrap} (config.env) for this one")
            print(broker.start())
        elif args.command == "stop":  # whichever runs, one node or three
            print(broker.stop())
            other = the_other(settings, broker)
            if other is not None:
                print(other.stop())
        elif args.command == "status":
            print(broker.status())
            other = the_other(settings, broker)
            if other is not None:
                print(other.status())
            up = [b for b in (broker, other) if b is not None and b.pid() is not None and b.answers()]
            return 0 if up else 3
        elif args.command == "logs":
            if not broker.log_path.exists():
                raise BrokerError(f"no log yet at {broker.log_path}: start the broker first")
            follow = ["-F"] if args.follow else []
            os.execvp("tail", ["tail", "-n", str(args.lines), *follow, str(broker.log_path)])
        elif args.command == "ensure":
            ensure(settings)
        elif args.command == "topics":
            reset = is_local(settings.bootstrap_servers) if settings.reset_topics == "auto" else bool(settings.reset_topics)
            roles = ["TOPIC", "OUTPUT_TOPIC", "DLQ_TOPIC", "STATE", *(["PARTIALS"] if settings.topic_partitions > 1 else [])]
            for line in create_topics(settings, reset, roles) or ["already there"]:
                status(f"topics: {line}")
        elif args.command == "tool":
            return run_tool(args.name, args.args, settings)
    except (BrokerError, NotAllowed) as exc:
        return error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
