"""consumer.py's metrics in the Prometheus text format on METRICS_PORT (`--metrics-port`), with the
official prometheus_client. A collector reads them at scrape time from the objects that own them
(the counters, the records written, the committer, the tasks, the group events, the lags last
looked at), so counting pays nothing per frame for them: a scrape sees what they hold then."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from uniqcount.runtime.committer import Committer
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.run_state import GroupEvents
from uniqcount.runtime.tasks import Tasks

PREFIX = "uniqcount_"


@dataclass
class Sources:
    counting: Counting
    committer: Committer
    tasks: Tasks
    events: GroupEvents
    lags: Callable[[], dict[Any, int | None]]  # by topic partition, as last looked at


class RunCollector(Collector):
    def __init__(self) -> None:
        self.sources: Sources | None = None  # set once the run's objects are built

    def collect(self) -> Iterator[Any]:
        s = self.sources
        if s is None:
            return
        counters = s.counting.counters
        for name, help_text, value in (
                ("frames_in", "frames read, from the start of the partitions' streams", counters.total("frames_in")),
                ("frames_counted", "frames counted", counters.total("counted_frames")),
                ("frames_late", "frames counted after their minute closed (corrections)", counters.total("late_frames")),
                ("checkpoints", "checkpoints committed by this process", s.committer.commits),
                ("checkpoint_bytes", "bytes of keys and values sent in checkpoints", s.committer.committed_bytes),
                ("restores", "partition tasks restored from the state topic", s.tasks.restores),
                ("rebalances", "partition assignments received from the group", s.events.rebalances)):
            yield CounterMetricFamily(PREFIX + name, help_text, value=value)
        dead = CounterMetricFamily(PREFIX + "frames_dead_lettered", "frames dead-lettered, by reason", labels=["reason"])
        for reason, n in sorted(counters.rejected.items()):
            dead.add_metric([reason], n)
        yield dead
        records = CounterMetricFamily(PREFIX + "records", "records written, by kind", labels=["kind"])
        for kind in ("final", "correction", "provisional"):
            records.add_metric([kind], s.counting.records.written[kind])
        yield records
        watermark = counters.watermark
        yield GaugeMetricFamily(PREFIX + "watermark_delay_seconds", "wall clock minus the event-time watermark",
                                value=time.time() - watermark if watermark is not None else float("nan"))
        yield GaugeMetricFamily(PREFIX + "last_checkpoint_seconds", "how long the last checkpoint took",
                                value=s.committer.last_seconds)
        yield GaugeMetricFamily(PREFIX + "last_checkpoint_bytes", "bytes the last checkpoint sent",
                                value=s.committer.last_bytes)
        lag = GaugeMetricFamily(PREFIX + "lag_records", "records not read yet, by partition",
                                labels=["topic", "partition"])
        for tp, behind in sorted(s.lags().items(), key=lambda item: (item[0].topic, item[0].partition)):
            if behind is not None:
                lag.add_metric([tp.topic, str(tp.partition)], behind)
        yield lag


def listen(port: int) -> RunCollector:
    """The metrics on http://0.0.0.0:port/metrics, in a thread of their own, before anything else
    starts (a port taken is one line, with nothing changed); the run sets their sources."""
    collector = RunCollector()
    registry = CollectorRegistry()
    registry.register(collector)
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        raise MetricsPortTaken(f"metrics: cannot listen on port {port} (METRICS_PORT): {exc.strerror}") from None
    return collector


class MetricsPortTaken(Exception):
    """One line for the user."""
