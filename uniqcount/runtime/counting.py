"""Parse, decide, emit: the one path every source (Kafka, file, stdin) goes through."""
from __future__ import annotations

from collections import Counter
from typing import Any

from uniqcount.core.frames import parse_frames
from uniqcount.runtime.outputs import DeadLetters, Records
from uniqcount.runtime.progress import Meter, Ticker
from uniqcount.core.records import iso_utc
from uniqcount.core.partition import Windows


def by_reason(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))


class Counting:
    def __init__(self, settings: dict[str, Any], records: Records, dead_letters: DeadLetters):
        self.settings = settings
        self.early = Ticker(settings["EMIT_EARLY_EVERY"])
        self.records = records
        self.dead_letters = dead_letters
        self.restart()

    def restart(self) -> None:
        """Empty state, as in a new process: for a consumer rewound to its committed offsets. The
        reconciliation counts from here (dead letters written before are left out of it)."""
        s = self.settings
        self.windows = Windows(s["ALLOWED_LATENESS"], s["LATE_RETENTION"], s["OUTLIER_JUMP"],
                               s["GRANULARITIES"], s["EXACT_UP_TO"], s["HLL_LG_K"])
        self.invalid: Counter[str] = Counter()
        self.meter = Meter(s["STATUS_INTERVAL"])
        self.written_before = Counter(self.dead_letters.written)

    def process(self, values: list[bytes], refs: list[Any], resume_from: Any = None) -> None:
        """`refs[i]` is what a dead letter of values[i] is made from (the bytes, or the Kafka record)."""
        pairs, bad = parse_frames(values)
        kept, dead = refs, [(reason, refs[index]) for index, reason in bad]
        if bad:
            self.invalid.update(reason for _, reason in bad)
            invalid = {index for index, _ in bad}
            kept = [ref for index, ref in enumerate(refs) if index not in invalid]
        self.meter.add(len(values), sum(map(len, values)))
        self.windows.add_many(pairs, kept, resume_from)
        self._emit(dead)
        if self.early.due():
            self.emit_provisional()

    def _emit(self, dead: list[tuple[str, Any]] = ()) -> None:
        results, rejected = self.windows.take()
        self.records.write(results)
        if dead or rejected:
            self.dead_letters.write([*dead, *rejected])

    def emit_provisional(self) -> None:
        self.records.write(self.windows.provisional())

    def advance_watermark(self, watermark: int) -> None:
        self.windows.advance_watermark(watermark)
        self._emit()

    def flush_all(self) -> None:
        """End of input: every held frame decided, every open window emitted."""
        self.windows.flush()
        self._emit()

    @property
    def dead(self) -> Counter[str]:
        return self.invalid + self.windows.rejected

    def status_line(self, lag: int | None = None) -> str:
        w = self.windows
        watermark = iso_utc(w.watermark) if w.watermark is not None else "-"
        lag_text = f", lag {lag:,}" if lag is not None else ""
        dead = self.dead
        return (f"consumer: {self.meter.frames:,} frames ({self.meter.frame_rate:,.0f}/s), watermark {watermark}"
                f"{lag_text}, open {w.open_windows}, kept {w.kept_windows} ({w.kept_bytes / 1e6:.1f} MB), "
                f"late {w.late_frames:,}, corrections {w.corrections:,}, "
                f"dead {sum(dead.values()):,}{f' ({by_reason(dead)})' if dead else ''}, held {w.held_frames:,}")

    def summary(self) -> str:
        """Rates, records, and the reconciliation: frames in = counted + dead-lettered (written: on
        Kafka, acknowledged) + held (+ frames re-read after a restart that were counted before it;
        + dead letters still unacknowledged, after a stop with the broker away). Then the frames too late per granularity:
        those counted by a longer granularity, and the dead-lettered `too_late` ones."""
        w = self.windows
        dead = self.dead_letters.written - self.written_before
        unwritten = sum(self.dead.values()) - sum(dead.values())
        held = f" + held {w.held_frames:,}" if w.held_frames else ""
        held += f" + dead letters not acknowledged {unwritten:,}" if unwritten else ""
        replayed = f" + re-read after a restart {w.replayed:,}" if w.replayed else ""
        written = self.records.written
        per_granularity = ", ".join(f"{s.name} {s.too_late:,}" for s in w.sets if s.too_late)
        too_late = f"; too late, per granularity: {per_granularity}" if per_granularity else ""
        return (f"consumer: done: {self.meter.rates()}; records: {written['final']:,} final, "
                f"{written['correction']:,} corrections, {written['provisional']:,} provisional; "
                f"frames in {self.meter.frames:,} = counted {w.counted_frames:,} (late {w.late_frames:,}) + "
                f"dead-lettered {sum(dead.values()):,}{f' ({by_reason(dead)})' if dead else ''}{held}{replayed}"
                f"{too_late}")
