"""Parse, decide, emit: the one path every source (Kafka, file, stdin) goes through. A file or stdin
is partition 0; a Kafka consumer counts each partition it owns on its own (core/merge.py), and of a
topic with several partitions, hands their partial results to the merger (runtime/merging.py)."""
from __future__ import annotations

from collections import Counter
from typing import Any

from uniqcount.core.frames import parse_frames
from uniqcount.core.merge import Partitions
from uniqcount.core.partition import Emitted, PartitionCounter
from uniqcount.core.records import iso_utc
from uniqcount.runtime.outputs import DeadLetters, Records
from uniqcount.runtime.progress import Meter, Ticker


def by_reason(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))


class Counting:
    def __init__(self, settings: dict[str, Any], records: Records, dead_letters: DeadLetters, partials: bool = False):
        """`partials`: a topic of several partitions, whose records the merger makes (core/merge.py)."""
        self.settings = settings
        self.partials = partials
        self.early = Ticker(settings["EMIT_EARLY_EVERY"])
        self.records = records
        self.dead_letters = dead_letters
        self.restart()

    def restart(self) -> None:
        """Empty state, as in a new process: for a consumer rewound to its last checkpoint."""
        self.partitions = Partitions(self.new_counter, self.partials)
        self.meter = Meter(self.settings["STATUS_INTERVAL"])

    def new_counter(self) -> PartitionCounter:
        s = self.settings
        return PartitionCounter(s["ALLOWED_LATENESS"], s["LATE_RETENTION"], s["OUTLIER_JUMP"],
                                s["GRANULARITIES"], s["EXACT_UP_TO"], s["HLL_LG_K"])

    def process(self, values: list[bytes], refs: list[Any], partition: int = 0) -> None:
        """`refs[i]` is what a dead letter of values[i] is made from (the bytes, or the Kafka record)."""
        pairs, bad = parse_frames(values)
        kept, dead = refs, [(reason, refs[index]) for index, reason in bad]
        if bad:
            invalid = {index for index, _ in bad}
            kept = [ref for index, ref in enumerate(refs) if index not in invalid]
        self.partitions.assign(partition).received(len(values), [reason for _, reason in bad])
        self.meter.add(len(values), sum(map(len, values)))
        self._emit(self.partitions.add_many(partition, pairs, kept), dead)
        if self.early.due():
            self.emit_provisional()

    def _emit(self, emitted: Emitted, dead: list[tuple[str, Any]] = ()) -> None:
        self.records.write(emitted.results)
        if dead or emitted.dead:
            self.dead_letters.write([*dead, *emitted.dead])

    def emit_provisional(self) -> None:
        self.records.write(self.partitions.provisional())

    def advance_idle(self, partition: int, watermark: int | None) -> None:
        self._emit(self.partitions.advance_idle(partition, watermark))

    def flush_all(self) -> None:
        """End of input: every held frame decided, every open window emitted."""
        self._emit(self.partitions.flush())

    def status_line(self, lag: int | None = None) -> str:
        p = self.partitions
        watermark = iso_utc(p.watermark) if p.watermark is not None else "-"
        lag_text = f", lag {lag:,}" if lag is not None else ""
        parts = f", partitions {len(p.counters)}" if len(p.counters) > 1 else ""
        dead = p.rejected
        return (f"consumer: {self.meter.frames:,} frames ({self.meter.frame_rate:,.0f}/s), watermark {watermark}"
                f"{lag_text}{parts}, open {p.total('open_windows')}, kept {p.total('kept_windows')} "
                f"({p.total('kept_bytes') / 1e6:.1f} MB), late {p.total('late_frames'):,}, "
                f"corrections {p.total('corrections'):,}, "
                f"dead {sum(dead.values()):,}{f' ({by_reason(dead)})' if dead else ''}, held {p.total('held_frames'):,}")

    def summary(self) -> str:
        """Rates, records, and the reconciliation of the partitions owned at the end, from the start
        of their streams (the state carries it through restarts): frames in =
        counted + dead-lettered + held. Then the frames too late per granularity: those counted by
        a longer granularity, and the dead-lettered `too_late` ones."""
        p = self.partitions
        dead = p.rejected
        held_frames = p.total("held_frames")
        held = f" + held {held_frames:,}" if held_frames else ""
        written = self.records.written
        per_granularity = ", ".join(f"{name} {n:,}" for name, n in p.too_late().items())
        too_late = f"; too late, per granularity: {per_granularity}" if per_granularity else ""
        return (f"consumer: done: {self.meter.rates()}; records: {written['final']:,} final, "
                f"{written['correction']:,} corrections, {written['provisional']:,} provisional; "
                f"frames in {p.total('frames_in'):,} = counted {p.total('counted_frames'):,} "
                f"(late {p.total('late_frames'):,}) + "
                f"dead-lettered {sum(dead.values()):,}{f' ({by_reason(dead)})' if dead else ''}{held}"
                f"{too_late}")
