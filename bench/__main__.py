"""The benchmark harness: one command, on the local (or configured) broker, every number of
docs/PERFORMANCE.md. `./run.sh bench` or `python -m bench`.

1. the canonical sample (1,000,000 frames of ~2 KB, 1000 frames/s, 100,000 users), generated once;
2. producer.py loading it into a fresh topic;
3. consumer.py over that pre-loaded topic: all six granularities, output to Kafka;
4. consumer.py on the file (six granularities, then minutes only);
5. the common published approach (bench/baseline.py) over the same topic, and our ratio to it.

Frames/s and MB/s come from each script's summary line, peak RSS from wait4 on its process.
Results go to bench/results/bench.json and into the table of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import sys
import time
import uuid

from kafka import KafkaAdminClient

from bench.measure import machine, measured, rates, summary_line, write_result, write_section
from uniqcount.config import REPO, load
from uniqcount.sample import ensure_sample

PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"


def step(name: str, command: list[str], env: dict[str, str]) -> dict:
    print(f"bench: {name} ...", file=sys.stderr)
    _, stderr, seconds, peak = measured(command, env)
    summary = summary_line(stderr)
    print(f"  {summary}", file=sys.stderr)
    shown = " ".join(["python", *command[1:]]).replace(str(REPO) + "/", "")
    return {"step": name, "command": shown, **rates(summary),
            "wall_seconds": round(seconds, 1), "peak_rss_mb": round(peak / 1e6), "summary": summary}


def table(results: list[dict], ratio: float) -> str:
    lines = ["| step | frames/s | MB/s | peak RSS | command |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['step']} | {r['frames_per_s']:,.0f} | {r['mb_per_s']:,.1f} | {r['peak_rss_mb']} MB "
                     f"| `{r['command']}` |")
    return "\n".join(lines) + f"\n\nOur consumer through Kafka / the baseline through Kafka: **{ratio:.1f}×**."


def main() -> int:
    settings = load()
    sample = str(ensure_sample(settings))
    run = uuid.uuid4().hex[:8]
    topic, output = f"bench-{run}", f"bench-out-{run}"
    kafka = {"TOPIC": topic, "OUTPUT_TOPIC": output, "DLQ_TOPIC": f"bench-dlq-{run}", "STATUS_INTERVAL": "0"}
    py = sys.executable
    try:
        results = [
            step("producer: gzipped sample -> Kafka", [py, str(REPO / "producer.py"), "--input", sample], kafka),
            step("consumer: Kafka -> Kafka, six granularities",
                 [py, str(REPO / "consumer.py"), "--exit-at-end", "--quiet"], {**kafka, "CONSUMER_GROUP": run}),
            step("consumer: gzipped file, six granularities",
                 [py, str(REPO / "consumer.py"), "--input", sample, "--quiet"], {"STATUS_INTERVAL": "0"}),
            step("consumer: gzipped file, minutes only",
                 [py, str(REPO / "consumer.py"), "--input", sample, "--quiet", "--granularities", "minute"],
                 {"STATUS_INTERVAL": "0"}),
            step("baseline: kafka-python, json.loads, set per minute", [py, "-m", "bench.baseline"],
                 {**kafka, "OUTPUT_TOPIC": f"{output}-baseline"}),
        ]
    finally:
        admin = KafkaAdminClient(bootstrap_servers=settings["BOOTSTRAP_SERVERS"])
        admin.delete_topics([t for t in admin.list_topics() if run in t])
        admin.close()
    ratio = results[1]["frames_per_s"] / results[4]["frames_per_s"]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "sample": sample,
              "command": "./run.sh bench", "results": results, "ratio_to_baseline": round(ratio, 2)}
    write_result("bench.json", report)
    m = report["machine"]
    write_section(PERFORMANCE, "bench",
                  f"Measured {report['date']} with `./run.sh bench` on {m['cores']} cores ({m['cpu']}), "
                  f"Python {m['python']}, {m['os']}; broker on the same machine.\n\n{table(results, ratio)}",
                  "Performance")
    print(table(results, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
