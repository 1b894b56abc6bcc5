"""`./run.sh bench --peers`: uniqcount beside the published approach and a stream framework, on the
same topic in the same run, each checked against uniqcount's exact minutes.

1. the canonical sample loaded into a fresh topic by producer.py;
2. consumer.py through Kafka, six granularities, then minutes only;
3. the published approach (bench/baseline.py: kafka-python, json.loads, a set per minute);
4. Bytewax (bench/peers/bytewax_flow.py: KafkaSource, json.loads, an event-time tumbling minute
   folding a set), in a virtualenv of its own made on first use (bench/peers/requirements.txt);
5. Flink SQL (bench/peers/flink_sql.py: a Kafka table, TUMBLE, COUNT DISTINCT, parallelism 1), in
   another (bench/peers/flink-requirements.txt), with its jars from Maven Central (FLINK_JARS);
6. file mode: consumer.py --input on the gzipped sample (six granularities, then minutes only) beside
   ClickHouse in process (bench/peers/chdb_file.py: JSONEachRow, uniqExact per minute, 2 threads),
   in a third virtualenv (bench/peers/chdb-requirements.txt).

Each runs `--repeat` times (3): the best run counts, the median is listed. The ratios go to
bench/results/peers.json and to the "Side by side" section of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from bench.measure import delete_run_topics, machine, markdown_table, step, write_result, write_section
from uniqcount import REPO
from uniqcount.devtools.sample import ensure_sample
from uniqcount.kafka_client.kafka_io import read_topic
from uniqcount.runtime.config import load

PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"
PEERS = REPO / "bench" / "peers"
CACHE = REPO / "bench" / "cache"
MAVEN = "https://repo1.maven.org/maven2"
# the Kafka SQL connector for Flink 2.2, and the zstd codec it leaves out (the topic is zstd)
FLINK_JARS = [("org.apache.flink", "flink-sql-connector-kafka", "5.0.0-2.2"), ("com.github.luben", "zstd-jni", "1.5.6-10")]


def peer_python(requirements: Path, venv: Path) -> str:
    """The Python of a peer's virtualenv, made or brought up to its requirements file first."""
    python, stamp = venv / "bin" / "python", venv / ".requirements.sha256"
    want = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not python.exists() or not stamp.exists() or stamp.read_text() != want:
        print(f"bench: installing {requirements.relative_to(REPO)} into {venv.relative_to(REPO)} ...", file=sys.stderr)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        installed = made.returncode == 0 and subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(requirements)],
            capture_output=True, text=True).returncode == 0
        if not installed:
            raise SystemExit(f"error: bench: could not install the peers into {venv}: see pip's own run of "
                             f"{python} -m pip install -r {requirements}")
        stamp.write_text(want)
    return str(python)


def maven_jar(group: str, artifact: str, version: str) -> Path:
    """A jar from Maven Central into bench/cache/jars, checked against the SHA-1 Maven Central lists."""
    path = CACHE / "jars" / f"{artifact}-{version}.jar"
    if not path.exists():
        url = f"{MAVEN}/{group.replace('.', '/')}/{artifact}/{version}/{path.name}"
        print(f"bench: downloading {url} ...", file=sys.stderr)
        try:
            data = urllib.request.urlopen(url, timeout=120).read()
            listed = urllib.request.urlopen(url + ".sha1", timeout=60).read().decode().split()[0]
        except OSError as exc:
            raise SystemExit(f"error: bench: could not download {url}: {exc}") from None
        if hashlib.sha1(data).hexdigest() != listed:
            raise SystemExit(f"error: bench: {url} does not match its SHA-1 on Maven Central")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def peer_minutes(path: Path) -> dict[int, int]:
    """{minute start: users} a peer wrote as JSON lines."""
    return {r["minute"]: r["users"] for r in map(json.loads, path.read_text().splitlines())}


def minutes_of(records: list[dict]) -> dict[int, int]:
    """{minute start: users} of consumer.py's final minute records (the latest of each key)."""
    latest = {}
    for r in records:
        if r.get("granularity") == "minute" and r.get("final"):
            latest[r["window_start"]] = r["unique_users"]
    return latest


def agreement(theirs: dict[int, int], ours: dict[int, int]) -> str:
    """How a peer's minutes compare with uniqcount's exact ones."""
    wrong = sorted(m for m in ours.keys() | theirs.keys() if theirs.get(m) != ours.get(m))
    if not wrong:
        return f"exact ({len(ours)} minutes)"
    off = sum(theirs.get(m, 0) - ours.get(m, 0) for m in wrong)
    return f"{len(wrong)} of {len(ours)} minutes differ, by {off:+,} users in all"


def row(result: dict, check: str, ours: float) -> list[str]:
    runs = result["frames_per_s_runs"]
    return [result["step"], f"{result['frames_per_s']:,.0f}", f"{statistics.median(runs):,.0f}",
            f"{result['mb_per_s']:,.1f}", f"{result['peak_rss_mb']} MB", f"{ours / result['frames_per_s']:.2f}×",
            check, f"`{result['command']}`"]


def main(repeat: int = 3) -> int:
    settings = load()
    sample = str(ensure_sample(settings))
    bytewax_python = peer_python(PEERS / "requirements.txt", CACHE / "peers-venv")
    flink_python = peer_python(PEERS / "flink-requirements.txt", CACHE / "flink-venv")
    chdb_python = peer_python(PEERS / "chdb-requirements.txt", CACHE / "chdb-venv")
    flink_jars = os.pathsep.join(str(maven_jar(*jar)) for jar in FLINK_JARS)
    run = uuid.uuid4().hex[:8]
    topic, output = f"peers-{run}", f"peers-out-{run}"
    kafka = {"BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TOPIC": topic, "OUTPUT_TOPIC": output,
             "DLQ_TOPIC": f"peers-dlq-{run}", "STATUS_INTERVAL": "0"}  # the peers read no config.env
    py = sys.executable
    try:
        loaded = step("producer: gzipped sample -> Kafka", [py, str(REPO / "producer.py"), "--input", sample], kafka)
        ours = step("uniqcount consumer.py: Kafka -> Kafka, six granularities",
                    [py, str(REPO / "consumer.py"), "--exit-at-end", "--quiet"], {**kafka, "CONSUMER_GROUP": run},
                    repeat)
        exact = minutes_of([json.loads(bytes(m.value)) for m in read_topic(settings.bootstrap_servers, output)])
        minutes_only = step("uniqcount consumer.py: Kafka -> Kafka, minutes only",
                            [py, str(REPO / "consumer.py"), "--exit-at-end", "--quiet", "--granularities", "minute"],
                            {**kafka, "OUTPUT_TOPIC": f"{output}-minutes", "CONSUMER_GROUP": f"{run}-minutes"},
                            repeat)
        baseline = step("published approach: kafka-python, json.loads, a set per minute", [py, "-m", "bench.baseline"],
                        {**kafka, "OUTPUT_TOPIC": f"{output}-baseline"}, repeat)
        baseline_minutes = {r["minute"]: r["users"] for r in (json.loads(bytes(m.value)) for m in read_topic(
            settings.bootstrap_servers, f"{output}-baseline"))}  # the last run's, after the earlier ones
        written = Path(tempfile.mkdtemp()) / "bytewax-minutes.jsonl"
        bytewax = step("Bytewax 0.21.1: KafkaSource, json.loads, event-time minute folding a set",
                       [bytewax_python, str(PEERS / "bytewax_flow.py")], {**kafka, "MINUTES_FILE": str(written)}, repeat)
        bytewax_minutes = peer_minutes(written)
        written = written.with_name("flink-minutes.jsonl")
        flink = step("Flink SQL 2.2.1: Kafka table, TUMBLE a minute, COUNT(DISTINCT uid), parallelism 1",
                     [flink_python, str(PEERS / "flink_sql.py")],
                     {**kafka, "MINUTES_FILE": str(written), "FLINK_JARS": flink_jars,
                      "TOPIC_MB": str(loaded["seconds"] * loaded["mb_per_s"])}, repeat)
        flink_minutes = peer_minutes(written)
        from_file = step("uniqcount consumer.py --input: gzipped file, six granularities",
                         [py, str(REPO / "consumer.py"), "--input", sample, "--quiet"], {}, repeat)
        file_minutes_only = step("uniqcount consumer.py --input: gzipped file, minutes only",
                                 [py, str(REPO / "consumer.py"), "--input", sample, "--quiet", "--granularities", "minute"],
                                 {}, repeat)
        written = written.with_name("chdb-minutes.jsonl")
        chdb = step("ClickHouse (chDB 4.4): file(), JSONEachRow, uniqExact per minute, 2 threads",
                    [chdb_python, str(PEERS / "chdb_file.py")],
                    {"INPUT": sample, "MINUTES_FILE": str(written), "THREADS": "2",
                     "INPUT_MB": str(loaded["seconds"] * loaded["mb_per_s"])}, repeat)
        chdb_minutes = peer_minutes(written)
    finally:
        delete_run_topics(settings.bootstrap_servers, run)
    best = ours["frames_per_s"]
    rows = [row(ours, f"exact ({len(exact)} minutes, tested)", best),
            row(minutes_only, "as above", best),
            row(baseline, agreement(baseline_minutes, exact), best),
            row(bytewax, agreement(bytewax_minutes, exact), best),
            row(flink, agreement(flink_minutes, exact), best)]
    file_best = from_file["frames_per_s"]
    file_rows = [row(from_file, "held to the samples' truth by tests/cli/test_pipeline.py", file_best),
                 row(file_minutes_only, "as above", file_best),
                 row(chdb, agreement(chdb_minutes, exact), file_best)]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "sample": sample,
              "command": f"./run.sh bench --peers --repeat {repeat}",
              "results": [ours, minutes_only, baseline, bytewax, flink, from_file, file_minutes_only, chdb],
              "ratios": {"bytewax": round(best / bytewax["frames_per_s"], 2), "flink": round(best / flink["frames_per_s"], 2),
                         "baseline": round(best / baseline["frames_per_s"], 2),
                         "chdb_file": round(file_best / chdb["frames_per_s"], 2)}}
    write_result("peers.json", report)
    m = report["machine"]
    columns = ["what", "frames/s (best)", "median", "MB/s", "peak RSS", "uniqcount six granularities / it",
               "minutes against uniqcount's exact ones", "command"]
    text = (f"Measured {report['date']} with `{report['command']}` on {m['cores']} cores ({m['cpu']}), Python "
            f"{m['python']}; broker on the same machine; the canonical sample in one topic of one partition.\n\n"
            + markdown_table(columns, rows) + "\n\nThe same sample from its gzipped file, on the same two cores:\n\n"
            + markdown_table(columns, file_rows))
    write_section(PERFORMANCE, "peers", text, "Performance")
    print(text)
    return 0

