"""Open minutes, the hot path's sets: each holds its users (uid hashes, userset.py) and its frames
until the minute closes (partition.py). `open_run` adds a run of frames to them; native/minutes.c
is its compiled twin, the one used where native/ is built."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from uniqcount.core.counters import NewUsers

MINUTE = 60


@dataclass(slots=True)
class OpenMinute:
    start: int
    users: set[int] = field(default_factory=set)  # uid hashes
    frames: int = 0
    reported: int = 0  # frames in the last provisional record

    def new_users(self, lg_k: int) -> NewUsers:
        return NewUsers(self.users, lg_k)


def open_run(users: Sequence[int], times: Sequence[int], index: int, minutes: dict[int, OpenMinute],
             max_ts: int) -> int:
    """From `index` on, each frame of an open minute with no new maximum added to it; where the run
    stops (native/minutes.c is its compiled twin)."""
    end = min(len(users), len(times))
    for at in range(index, end):
        ts = times[at]
        minute = minutes.get(ts - ts % MINUTE)
        if minute is None or ts > max_ts:
            return at
        minute.users.add(users[at])
        minute.frames += 1
    return end


try:  # the compiled twin (native/minutes.c, built by pip from requirements.txt)
    from uniqcount_native import open_run as compiled_run
except ImportError:
    compiled_run = open_run
OPEN_RUN = compiled_run  # what add_many calls
