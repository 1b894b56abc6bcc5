"""The README's commands work as written. Each command in it (code blocks, and inline code that
starts like a command) is run here, word for word, or names the test or CI step that runs it;
a command found in neither place fails the first test. The `$ ` examples of docs/USAGE.md are
run too, and must print what they show, rates and times aside."""
from __future__ import annotations

import gzip
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.truth import users_of_frames
from tests.helpers import LATE, latest_per_key, needs_samples, png_size, truth_minutes
from uniqcount import REPO
from uniqcount.kafka_client.kafka_io import read_topic

README = REPO / "README.md"
USAGE = REPO / "docs" / "USAGE.md"
COMMAND = re.compile(r"^(\./|docker |zcat |python -m |([A-Z_]+=\S+ )+\S)")
NEEDS_A_DOCKER_ENGINE = "not run: no Docker engine on this machine or CI; tests/devtools/test_compose.py checks the file"
RUN_ELSEWHERE = {
    "./run.sh serve": "tests/broker/test_live_page.py::test_the_live_page_follows_a_real_run_and_answers_a_range",  # a command of the README -> who runs it
    "./run.sh test": ".ci/run",
    "./run.sh lint": ".ci/run",
    "./run.sh bench --repeat 1": ".ci/run",
    "./run.sh bench --peers --repeat 3": "by hand (its peers' virtualenvs and Maven jars are ~1.5 GB, a run ~10 "
    "minutes; its tables are docs/PERFORMANCE.md's 'Side by side'); tests/bench/test_bench_peers.py checks its "
    "comparison of each peer's minutes",
    "./run.sh broker start": "tests/devtools/test_broker.py::test_acknowledged_messages_survive_stop_and_crash",
    "./run.sh broker status": "tests/devtools/test_broker.py::test_acknowledged_messages_survive_stop_and_crash",
    "./run.sh broker logs": "tests/devtools/test_broker.py::test_acknowledged_messages_survive_stop_and_crash",
    "./run.sh broker stop": "tests/devtools/test_broker.py::test_acknowledged_messages_survive_stop_and_crash",
    "./run.sh broker start --nodes 3": "not run as written (ports 9092-9097 are CI's broker's): "
    "tests/devtools/test_cluster_setup.py checks what it would start, tests/broker/test_cluster.py runs "
    "the same cluster on free ports",
    "BOOTSTRAP_SERVERS=127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096 CONSUMERS=2 TOPIC_PARTITIONS=4 ./run.sh":
    "run by hand on 2026-12-02 (rc 0 in 101 s; the cluster would take CI's broker's ports); "
    "tests/broker/test_cluster.py runs consumers on a cluster of three",
    "python -m uniqcount.devtools.drills": "by hand (about 17 minutes; its table is docs/FAILURES.md); "
    "tests/broker/test_cluster.py runs two of its drills",
    "./consumer.py --metrics-port 9464": "tests/broker/test_metrics.py::"
    "test_the_scraped_metrics_are_the_consumers_own_counts",
    "./consumer.py & ./consumer.py & ./consumer.py &": "tests/broker/test_scale_out.py::"
    "test_three_started_alike_one_killed_and_restarted_alike_resume_exact",
    "docker compose up -d --wait": NEEDS_A_DOCKER_ENGINE,
    "docker compose down": NEEDS_A_DOCKER_ENGINE,
    "docker compose exec kafka /opt/kafka/bin/kafka-console-consumer.sh --bootstrap-server localhost:9092 "
    "--topic events-output --from-beginning --property print.key=true --property key.separator=' ' "
    "--isolation-level read_committed": NEEDS_A_DOCKER_ENGINE,
}
CONSOLE = ("./run.sh kafka-console-consumer --topic events-output --from-beginning --property print.key=true "
           "--property key.separator=' ' --isolation-level read_committed")
QUERY = "./run.sh query 2016-07-11T13:40 2016-07-11T13:50"
RUN_HERE = {  # a command of the README -> the test of this file that runs it as written
    "./run.sh": "test_run_sh_and_what_the_readme_does_with_its_results",
    CONSOLE: "test_run_sh_and_what_the_readme_does_with_its_results",
    "./run.sh kafka-topics --list": "test_run_sh_and_what_the_readme_does_with_its_results",
    "./run.sh plot": "test_run_sh_and_what_the_readme_does_with_its_results",
    "./run.sh plot --granularity day": "test_run_sh_and_what_the_readme_does_with_its_results",
    QUERY: "test_run_sh_and_what_the_readme_does_with_its_results",
    "CONSUMERS=2 TOPIC_PARTITIONS=4 ./run.sh": "test_run_sh_and_what_the_readme_does_with_its_results",
    "BOOTSTRAP_SERVERS=kafka.example.com:9092 ./run.sh": "test_a_broker_that_does_not_answer_stops_run_sh_in_the_line_shown",
    "zcat ../shared/data/sample-late.jsonl.gz | ./consumer.py --input -": "test_stdin_mode_as_shown",
    "./run.sh test tests/core": "test_the_inner_loop_is_the_pure_core_alone",
}


def code_blocks(text: str) -> list[list[str]]:
    """The lines of each code block, but those fenced as ```text: output shown, not commands."""
    return [block.splitlines() for fence, block in re.findall(r"^```([a-z]*)\n(.*?)^```", text, re.S | re.M)
            if fence != "text"]


def without_comment(line: str) -> str:
    return re.split(r"\s{2,}#", line)[0].strip()


def commands(text: str) -> set[str]:
    """Every command of a Markdown text: the lines of code blocks that start like one (joining
    continued lines; `$ ` lines only in blocks that show output), and inline code that does."""
    found = set()
    for lines in code_blocks(text):
        shown = [line[2:] for line in lines if line.startswith("$ ")]
        joined, pending = [], ""
        for line in (shown or lines):
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1].strip() + " "
                continue
            joined.append(pending + line.strip() if pending else line)
            pending = ""
        found |= {without_comment(line) for line in joined if COMMAND.match(line)}
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    found |= {span for span in re.findall(r"`([^`\n]+)`", prose) if COMMAND.match(span)}
    return {re.sub(r"\s+", " ", c).strip() for c in found}


def test_every_readme_command_is_run_here_or_names_who_runs_it():
    found = commands(README.read_text())
    assert "./run.sh" in found and CONSOLE in found, "the extraction finds the README's commands"
    unaccounted = found - RUN_HERE.keys() - RUN_ELSEWHERE.keys()
    assert not unaccounted, f"README commands that nothing runs: {sorted(unaccounted)}"
    for command, where in RUN_ELSEWHERE.items():
        if where == ".ci/run":
            assert command in (REPO / ".ci" / "run").read_text(), command
        elif where.startswith("tests/"):
            path, name = where.split("::")
            assert f"def {name}(" in (REPO / path).read_text(), where
    tests = Path(__file__).read_text()
    assert all(f"def {name}(" in tests for name in RUN_HERE.values())


def test_the_extraction_takes_continued_lines_comments_and_inline_code():
    text = ("```\n./run.sh x \\\n    --y z   # a comment\n# only a comment\nbroker: output\n```\n"
            "```text\n./run.sh shown as output\n```\nthen `./run.sh plot` here, `config.env` there")
    assert commands(text) == {"./run.sh x --y z", "./run.sh plot"}


def masked(line: str) -> str:
    """A summary line without what changes from run to run: rates and times."""
    line = re.sub(r"[\d,.]+ (frames/s|MB/s|s\b)", r"N \1", line)
    return re.sub(r"\([\d,]+/s\)", "(N/s)", line)


def shown_examples(text: str) -> list[tuple[str, list[str]]]:
    """Each `$ command` of a code block with the lines shown under it."""
    examples = []
    for lines in code_blocks(text):
        for line in lines:
            if line.startswith("$ "):
                examples.append((line[2:], []))
            elif examples and lines[0].startswith("$ "):
                examples[-1][1].append(line)
    return examples


@needs_samples
def test_the_examples_of_usage_print_what_they_show(tmp_path):
    examples = shown_examples(USAGE.read_text())
    assert len(examples) >= 2
    for command, shown in examples:
        done = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, timeout=120,
                              env={**os.environ, "STATUS_INTERVAL": "0"})
        assert done.returncode == 0, (command, done.stderr[-2000:])
        printed = {masked(line) for line in (done.stdout + done.stderr).decode().splitlines()}
        for line in shown:
            assert masked(line) in printed, (command, line)
    (REPO / "dead.tsv").unlink(missing_ok=True)


@needs_samples
def test_stdin_mode_as_shown():
    command = "zcat ../shared/data/sample-late.jsonl.gz | ./consumer.py --input -"
    done = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [{k: r[k] for k in ("window_start", "unique_users", "frames")} for r in latest_per_key(records)] \
        == truth_minutes(LATE)


def test_the_inner_loop_is_the_pure_core_alone():
    """`./run.sh test tests/core` (collected only here: CI runs them all) takes the core's tests, and
    none of them needs a broker."""
    done = subprocess.run("./run.sh test tests/core --collect-only -q", shell=True, cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(collected) > 100 and all(line.startswith("tests/core/") for line in collected), done.stdout[-2000:]
    kafka = subprocess.run("./run.sh test tests/core --collect-only -q -m kafka", shell=True, cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert "::" not in kafka.stdout and "deselected" in kafka.stdout, kafka.stdout  # no core test is marked kafka


def test_a_broker_that_does_not_answer_stops_run_sh_in_the_line_shown():
    done = subprocess.run("BOOTSTRAP_SERVERS=kafka.example.com:9092 ./run.sh", shell=True, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    shown = re.sub(r"\s+", " ", README.read_text())
    assert done.stderr.strip().startswith("error: the broker kafka.example.com:9092 named by BOOTSTRAP_SERVERS does not answer")
    assert re.sub(r" \(fix .*", "", done.stderr.strip()) in shown


def latest(records: list[dict]) -> dict[tuple[str, int], dict]:
    return {(r["granularity"], r["window_start"]): r for r in records}


def console_lines(wanted: int, env: dict[str, str] | None = None, timeout: float = 90) -> list[str]:
    """The README's console command, as written, until it printed `wanted` records; then Ctrl-C."""
    process = subprocess.Popen(CONSOLE, shell=True, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True, text=True, env={**os.environ, **(env or {})})
    lines, deadline = [], time.monotonic() + timeout
    try:
        while len(lines) < wanted and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)
    return lines


def assert_right(records: dict[tuple[str, int], dict], truth: dict[tuple[str, int], int]) -> None:
    """Exact windows equal the truth; HyperLogLog ones hold it inside their bounds."""
    assert {key for key, r in records.items() if r["final"]} == set(truth)
    for key, r in records.items():
        if r["estimate"] == "exact":
            assert r["unique_users"] == truth[key], key
        else:
            assert r["lower_bound"] <= truth[key] <= r["upper_bound"], key


@pytest.mark.kafka
def test_run_sh_and_what_the_readme_does_with_its_results(bootstrap):
    """`./run.sh` as a newcomer runs it, then every README command that reads its results."""
    run = subprocess.run("./run.sh", shell=True, cwd=REPO, capture_output=True, timeout=900)
    assert run.returncode == 0, run.stderr.decode()[-3000:]
    records = [json.loads(line) for line in run.stdout.splitlines()]
    final = {key: r for key, r in latest(records).items() if r["final"]}
    sample = REPO / "data" / "stream.jsonl.gz"
    with gzip.open(sample, "rb") as lines:
        users = users_of_frames(lines)  # one full json.loads of the sample
    truth = {key: len(members) for key, members in users.items()}
    assert_right(final, truth)
    with gzip.open(sample, "rb") as lines:
        frames = sum(1 for line in lines if line.strip())
    assert f"frames in {frames:,} = counted {frames:,}" in run.stderr.decode()

    queried = subprocess.run(QUERY, shell=True, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert queried.returncode == 0, queried.stderr
    ten_minutes = json.loads(queried.stdout)
    start, end = 1468244400, 1468245000  # 2016-07-11T13:40 and 13:50, UTC
    assert (ten_minutes["from"], ten_minutes["to"], ten_minutes["estimate"]) == (start, end, "exact")
    assert ten_minutes["complete"] and len(ten_minutes["windows"]) == 10
    assert ten_minutes["unique_users"] == len(set().union(*(users["minute", m] for m in range(start, end, 60))))

    shown = console_lines(len(records))
    assert len(shown) == len(records)
    keyed = [line.split(" ", 1) for line in shown]
    assert all(key == f"{json.loads(value)['granularity']}:{json.loads(value)['window_start']}" for key, value in keyed)
    assert latest([json.loads(value) for _, value in keyed]) == latest(records)

    topics = subprocess.run("./run.sh kafka-topics --list", shell=True, cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert {"events", "events-output", "events-dlq", "uniqcount-state"} <= set(topics.stdout.split())

    for command, granularity in (("./run.sh plot", "minute"), ("./run.sh plot --granularity day", "day")):
        picture = REPO / "results" / f"{granularity}.png"
        picture.unlink(missing_ok=True)
        plotted = subprocess.run(command, shell=True, cwd=REPO, capture_output=True, text=True, timeout=120)
        windows = sum(1 for g, _ in final if g == granularity)
        assert plotted.returncode == 0 and f"plot: {windows:,} {granularity} windows" in plotted.stderr, plotted.stderr
        assert png_size(picture) == (1000, 400)

    scaled = subprocess.run("CONSUMERS=2 TOPIC_PARTITIONS=4 ./run.sh", shell=True, cwd=REPO, capture_output=True,
                            timeout=900)
    assert scaled.returncode == 0, scaled.stderr.decode()[-3000:]
    assert "2 consumers in one group" in scaled.stderr.decode()
    merged = latest([json.loads(m.value) for m in read_topic(bootstrap, "events-output")])
    assert_right({key: r for key, r in merged.items() if r["final"]}, truth)


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_readme_and_the_docs_leads_somewhere():
    for page in [README, *sorted((REPO / "docs").glob("*.md"))]:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor and linked.suffix == ".md":
                headings = {slug(h) for h in re.findall(r"^#+ (.*)$", linked.read_text(), re.M)}
                assert anchor in headings, f"{page.name}: {target}"
