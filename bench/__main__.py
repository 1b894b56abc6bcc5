"""The benchmark harness: one command, on the local (or configured) broker, every number of
docs/PERFORMANCE.md. `./run.sh bench` or `python -m bench`.

1. the canonical sample (1,000,000 frames of ~2 KB, 1000 frames/s, 100,000 users), generated once;
2. producer.py loading it into a fresh topic;
3. consumer.py over that pre-loaded topic: all six granularities, output to Kafka;
4. consumer.py on the file (six granularities, then minutes only);
5. the common published approach (bench/baseline.py) over the same topic, and our ratio to it.

Frames/s and MB/s come from each script's summary line, peak RSS from wait4 on its process. Each
consumer step and the baseline run `--repeat` times (3): the best run counts, all are listed.
Results go to bench/results/bench.json and into the table of docs/PERFORMANCE.md.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid

from bench import peers
from bench.measure import delete_run_topics, machine, step, write_result, write_section
from bench.plots import harness_picture
from uniqcount import REPO
from uniqcount.devtools.sample import ensure_sample
from uniqcount.runtime.config import load

PERFORMANCE = REPO / "docs" / "PERFORMANCE.md"


def table(results: list[dict], ratio: float) -> str:
    lines = ["| step | frames/s (best) | all runs | MB/s | peak RSS | command |", "|---|---|---|---|---|---|"]
    for r in results:
        runs = ", ".join(f"{f / 1000:.0f}k" for f in r["frames_per_s_runs"])
        lines.append(f"| {r['step']} | {r['frames_per_s']:,.0f} | {runs} | {r['mb_per_s']:,.1f} | "
                     f"{r['peak_rss_mb']} MB | `{r['command']}` |")
    return "\n".join(lines) + f"\n\nOur consumer through Kafka / the baseline through Kafka, best runs: **{ratio:.1f}×**."


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each consumer step (the best is reported)")
    parser.add_argument("--peers", action="store_true",
                        help="instead: uniqcount beside the published approach and Bytewax (bench/peers.py)")
    args = parser.parse_args()
    if args.peers:
        return peers.main(args.repeat)
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
                 [py, str(REPO / "consumer.py"), "--exit-at-end", "--quiet"], {**kafka, "CONSUMER_GROUP": run},
                 args.repeat),
            step("consumer: gzipped file, six granularities",
                 [py, str(REPO / "consumer.py"), "--input", sample, "--quiet"], {"STATUS_INTERVAL": "0"}, args.repeat),
            step("consumer: gzipped file, minutes only",
                 [py, str(REPO / "consumer.py"), "--input", sample, "--quiet", "--granularities", "minute"],
                 {"STATUS_INTERVAL": "0"}, args.repeat),
            step("baseline: kafka-python, json.loads, set per minute", [py, "-m", "bench.baseline"],
                 {**kafka, "OUTPUT_TOPIC": f"{output}-baseline"}, args.repeat),
        ]
    finally:
        delete_run_topics(settings.bootstrap_servers, run)
    ratio = results[1]["frames_per_s"] / results[4]["frames_per_s"]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "sample": sample,
              "command": f"./run.sh bench --repeat {args.repeat}", "results": results, "ratio_to_baseline": round(ratio, 2)}
    write_result("bench.json", report)
    m = report["machine"]
    write_section(PERFORMANCE, "bench",
                  f"Measured {report['date']} with `{report['command']}` on {m['cores']} cores ({m['cpu']}), "
                  f"Python {m['python']}, {m['os']}; broker on the same machine.\n\n{table(results, ratio)}",
                  "Performance")
    harness_picture(report)
    print(table(results, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
