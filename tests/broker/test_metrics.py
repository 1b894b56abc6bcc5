"""consumer.py --metrics-port: scraped while it runs, read with prometheus_client's own parser, and
held against the consumer's summary line; a port already taken is one line and exit code 1."""
from __future__ import annotations

import gzip
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.broker.test_exactly_once import committed
from tests.broker.test_faults import start_consumer
from tests.helpers import LATE, kafka_env, produce
from uniqcount import REPO

LAST_TS = 1468245000  # sample-late ends before 2016-07-11T13:50Z


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def test_the_scraped_metrics_are_the_consumers_own_counts(bootstrap, tmp_path):
    port = free_port()
    env = kafka_env(bootstrap, METRICS_PORT=str(port), IDLE_FLUSH_SECONDS="100000", CHECKPOINT_SECONDS="1")
    lines = [line for line in gzip.decompress(LATE.read_bytes()).splitlines() if line.strip()]
    produce(env, tmp_path / "late.jsonl", b"\n".join(lines))
    log = tmp_path / "consumer.log"
    consumer = start_consumer(env, log)
    try:
        deadline = time.monotonic() + 120
        while (committed(bootstrap, env) or 0) < len(lines):
            assert time.monotonic() < deadline and consumer.poll() is None, log.read_text()[-2000:]
            time.sleep(0.5)
        metrics = scrape(port)
        taken = subprocess.run([sys.executable, "consumer.py", "--quiet"], cwd=REPO, capture_output=True, text=True,
                               env={**env, "CONSUMER_GROUP": env["CONSUMER_GROUP"] + "-second"}, timeout=60)
    finally:
        consumer.send_signal(signal.SIGINT)
        consumer.wait(timeout=60)
    assert taken.returncode == 1 and taken.stderr.strip() == \
        f"error: metrics: cannot listen on port {port} (METRICS_PORT): Address already in use", taken.stderr
    summary = re.search(r"records: ([\d,]+) final, ([\d,]+) corrections, ([\d,]+) provisional; frames in ([\d,]+) = "
                        r"counted ([\d,]+) \(late ([\d,]+)\) \+ dead-lettered ([\d,]+)", log.read_text())
    assert summary, log.read_text()[-2000:]
    final, corrections, provisional, frames_in, counted, late, dead = (int(n.replace(",", "")) for n in summary.groups())
    assert frames_in == len(lines)
    assert metrics[("uniqcount_frames_in_total", ())] == frames_in
    assert metrics[("uniqcount_frames_counted_total", ())] == counted
    assert metrics[("uniqcount_frames_late_total", ())] == late > 0
    assert sum(v for (name, _), v in metrics.items() if name == "uniqcount_frames_dead_lettered_total") == dead
    assert [metrics[("uniqcount_records_total", (("kind", kind),))] for kind in ("final", "correction", "provisional")] \
        == [final, corrections, provisional]
    assert metrics[("uniqcount_lag_records", (("partition", "0"), ("topic", env["TOPIC"])))] == 0
    assert metrics[("uniqcount_restores_total", ())] == 1 and metrics[("uniqcount_rebalances_total", ())] >= 1
    assert metrics[("uniqcount_checkpoints_total", ())] >= 1 and metrics[("uniqcount_last_checkpoint_bytes", ())] > 0
    assert time.time() - LAST_TS < metrics[("uniqcount_watermark_delay_seconds", ())] < time.time() - LAST_TS + 1200
