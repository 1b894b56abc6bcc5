"""The bit-flip defence: a frame far ahead of the accepted event time waits for the stream to agree.

One frame with a random timestamp years ahead must not move the watermark, or every open window
would close at once and everything after it would be late. A genuine jump (the stream resumes after
a gap, or a replay skips ahead) looks the same for its first frame; what tells them apart is what the
stream does next. So a frame more than `jump` seconds ahead of the largest accepted event time is
*held*, neither counted nor moving the watermark, and:

- the held frames are **confirmed** (the stream moved on) once there are at least CONFIRMATIONS of
  them and they outnumber the frames accepted since the oldest of them was held: after a genuine
  jump nearly every new frame is ahead, while a bit flip sits among thousands of ordinary frames;
- a held frame is an **outlier** once PATIENCE frames have been accepted since it was held without a
  confirmation: it goes to the dead letters with reason `ts_outlier`.

At the very start there is no accepted event time yet: the first CONFIRMATIONS frames are held and
the stream starts from the earliest of them within `jump` of their median, so a flipped first frame
cannot anchor it either.
Pure: counts frames, never looks at a clock.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONFIRMATIONS = 3
PATIENCE = 1000


def plain(ref: Any) -> Any:
    """A held frame's ref, self-contained: views (into a whole inflated batch, say) become bytes,
    in a tuple (a record) too, so that a held frame keeps its own bytes and nothing else."""
    if isinstance(ref, memoryview):
        return bytes(ref)
    if isinstance(ref, tuple) and any(isinstance(part, memoryview) for part in ref):
        parts = [bytes(part) if isinstance(part, memoryview) else part for part in ref]
        return type(ref)._make(parts) if hasattr(ref, "_make") else tuple(parts)
    return ref


@dataclass(slots=True)
class Held:
    user: int  # the uid's hash
    ts: int
    ref: Any
    accepted_before: int  # frames accepted before this one was held


class OutlierGuard:
    def __init__(self, jump: int):
        """`jump` seconds ahead of the accepted event time makes a frame suspect; 0 turns the guard off."""
        self.jump = jump
        self.held: list[Held] = []
        self.accepted = 0

    def suspect(self, ts: int, max_ts: int | None) -> bool:
        return self.jump > 0 and (max_ts is None or ts > max_ts + self.jump)

    def hold(self, frame: Held) -> None:
        self.held.append(frame)

    def confirmed(self, anchored: bool) -> bool:
        held = self.held
        if len(held) < CONFIRMATIONS:
            return False
        return not anchored or len(held) > self.accepted - held[0].accepted_before

    def expired(self) -> list[Held]:
        """Held frames that waited PATIENCE accepted frames in vain, oldest first."""
        held, cut = self.held, 0
        while cut < len(held) and self.accepted - held[cut].accepted_before >= PATIENCE:
            cut += 1
        gone, self.held = held[:cut], held[cut:]
        return gone

    def release(self) -> list[Held]:
        released, self.held = self.held, []
        return released
