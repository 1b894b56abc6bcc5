"""The same job in Flink SQL, as Flink's documentation writes it: a Kafka table read from the topic's
start to its end ('scan.bounded.mode' = 'latest-offset'), the json format reading the top-level uid
and ts, an event-time attribute with a 5 s watermark, and a TUMBLE window of a minute counting
DISTINCT uids, parallelism 1 (Flink's own local mini-cluster, one task slot). Runs in its own
virtualenv (bench/peers/flink-requirements.txt) with the Kafka SQL connector's jar from Maven Central
(FLINK_KAFKA_JAR). Prints one summary line like consumer.py's and writes the minutes as JSON lines to
MINUTES_FILE: {"minute": start, "users": n}. TOPIC_MB: the topic's size, for the MB/s figure.

The time is from the query's submission to its last row, so it holds the job's start on the
mini-cluster (~2-3 s here), as consumer.py's figure holds its own restore.

    BOOTSTRAP_SERVERS=... TOPIC=... MINUTES_FILE=... FLINK_KAFKA_JAR=... python bench/peers/flink_sql.py
"""
from __future__ import annotations

import calendar
import os
import sys
import time
import uuid

from peer_output import report
from pyflink.table import EnvironmentSettings, TableEnvironment

SOURCE = """
CREATE TABLE frames (
  uid STRING,
  ts BIGINT,
  rt AS TO_TIMESTAMP_LTZ(ts, 0),
  WATERMARK FOR rt AS rt - INTERVAL '5' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = '{topic}',
  'properties.bootstrap.servers' = '{bootstrap}',
  'properties.group.id' = '{group}',
  'scan.startup.mode' = 'earliest-offset',
  'scan.bounded.mode' = 'latest-offset',
  'format' = 'json'
)"""

QUERY = """
SELECT window_start, COUNT(DISTINCT uid) AS users, COUNT(*) AS frames
FROM TABLE(TUMBLE(TABLE frames, DESCRIPTOR(rt), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end"""


def main() -> int:
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("pipeline.jars", ";".join(f"file://{jar}" for jar in os.environ["FLINK_JARS"].split(os.pathsep)))
    config.set("parallelism.default", "1")
    config.set("table.local-time-zone", "UTC")
    env.execute_sql(SOURCE.format(topic=os.environ["TOPIC"], bootstrap=os.environ["BOOTSTRAP_SERVERS"],
                                  group=f"flink-{uuid.uuid4().hex[:8]}"))
    started = time.monotonic()
    minutes, frames = [], 0
    with env.execute_sql(QUERY).collect() as rows:
        for row in rows:
            start = calendar.timegm(row[0].timetuple())  # window_start: a UTC wall time
            minutes.append((start, int(row[1])))
            frames += int(row[2])
    seconds = time.monotonic() - started
    report("flink", minutes, frames, float(os.environ.get("TOPIC_MB", 0)) * 1e6, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
