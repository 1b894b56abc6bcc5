"""Lag and idleness of the input partitions a consumer owns. A partition caught up and idle (no frame
for IDLE_FLUSH_SECONDS) is quiet: what it holds open is published final, its event time moves on
with the wall clock since its last frame, and it holds the others back no more. Never while behind (lag > 0): replayed history must close windows by its
own event time; and not for the time the broker was away: the frames of that time may still come."""
from __future__ import annotations

import time
from typing import Any

from uniqcount.runtime.count_task import CountTask
from uniqcount.runtime.counting import Counting
from uniqcount.runtime.outage import Outage
from uniqcount.runtime.tasks import Tasks


class Idleness:
    def __init__(self, consumer: Any, tasks: Tasks, counting: Counting, outage: Outage, topic: str):
        self.consumer = consumer
        self.tasks = tasks
        self.counting = counting
        self.outage = outage
        self.topic = topic
        self.started = time.monotonic()

    def inputs(self) -> list[Any]:
        """The input partitions assigned (not the partials topic's)."""
        return [tp for tp in self.consumer.assignment() if tp.topic == self.topic]

    def lags(self) -> dict[Any, int | None]:
        """Per owned partition: records not read yet (None: the broker has not said, or the
        partition is not restored yet)."""
        lags: dict[Any, int | None] = {}
        for tp in self.inputs():
            highwater = self.consumer.highwater(tp)
            lags[tp] = None if highwater is None or tp not in self.tasks.tasks else \
                max(highwater - self.tasks.position(tp), 0)
        return lags

    def lag(self) -> int | None:
        lags = self.lags()
        return None if not lags or None in lags.values() else sum(v or 0 for v in lags.values())

    def advance(self, idle_after: float) -> None:
        if self.outage.since is not None:
            return
        now = time.monotonic()
        tasks = {tp: task for tp, task in self.tasks.tasks.items() if isinstance(task, CountTask)}
        idle = {tp: now - max(task.last_frame or self.started, self.outage.ended_at) for tp, task in tasks.items()}
        lags = self.lags()
        unknown = [tp for tp, lag in lags.items() if lag is None and tp in tasks and idle[tp] >= idle_after]
        if unknown:  # no fetch has said its high watermark yet (seen for a partition that never had a record)
            ends = self.tasks.end_offsets(unknown) or {}
            lags.update({tp: max(end - self.tasks.position(tp), 0) for tp, end in ends.items()})
        for tp, lag in lags.items():
            if tp not in tasks or idle[tp] < idle_after or lag != 0:
                continue
            task = tasks[tp]
            if not task.frame_watermark_known:  # no frame since the restore: from its restored event time
                task.counter.settle()  # a stream too short to start: start it
                task.watermark_at_last_frame, task.frame_watermark_known = task.counter.watermark, True
            watermark = task.watermark_at_last_frame
            self.counting.advance_idle(task.partition, None if watermark is None else watermark + int(idle[tp]))
