"""Parse, decide, emit: the one path every source (Kafka, file, stdin) goes through. A file or stdin
is partition 0; a Kafka consumer counts each partition it owns on its own (core/partition_counters.py), and of a
topic with several partitions, hands their partial results to the merger (runtime/merger_task.py)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

from uniqcount.core.frames import Parsed, parse_batch, resolved
from uniqcount.core.partition import Emitted, PartitionCounter
from uniqcount.core.partition_counters import PartitionCounters
from uniqcount.core.records import iso_utc
from uniqcount.runtime.config import Settings
from uniqcount.runtime.outputs import DeadLetters, Records
from uniqcount.runtime.progress import Meter, Ticker


def by_reason(counts: Counter[str]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(counts.items()))


class ColumnRefs(Sequence[Any]):
    """columns.ref(i), made when asked for: what a dead letter or a held frame is made of."""

    __slots__ = ("columns",)

    def __init__(self, columns: Any):
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]  # no slices: refs are taken one by one
        if not 0 <= i < len(self.columns):
            raise IndexError(i)
        return self.columns.ref(i)


class Counting:
    def __init__(self, settings: Settings, records: Records, dead_letters: DeadLetters, scaled_out: bool = False):
        """`scaled_out`: a topic of several partitions, whose records the merger makes
        (core/partition_counters.py)."""
        self.settings = settings
        self.scaled_out = scaled_out
        self.early = Ticker(settings.emit_early_every)
        self.records = records
        self.dead_letters = dead_letters
        self.restart()

    def restart(self) -> None:
        """Empty state, as in a new process: for a consumer rewound to its last checkpoint."""
        self.counters = PartitionCounters(self.new_counter, self.scaled_out)
        self.meter = Meter(self.settings.status_interval)

    def new_counter(self) -> PartitionCounter:
        s = self.settings
        return PartitionCounter(s.allowed_lateness, s.late_retention, s.outlier_jump,
                                s.granularities, s.exact_up_to, s.hll_lg_k)

    def process(self, values: list[bytes], refs: Sequence[Any], partition: int = 0) -> None:
        """`refs[i]` is what a dead letter of values[i] is made from (the bytes, or the Kafka record)."""
        self._count(parse_batch(values), refs, sum(map(len, values)), partition)

    def process_columns(self, columns: Any, partition: int) -> None:
        """A batch as columns (RecordColumns of a Kafka batch, LineColumns of a file's block): its
        users and times found already, the ref of frame i made only when asked for."""
        self._count(resolved(columns.users, columns.times, columns.unsure, columns.value), ColumnRefs(columns),
                    columns.value_bytes, partition)

    def _count(self, parsed: Parsed, refs: Sequence[Any], nbytes: int, partition: int) -> None:
        users, times, bad = parsed
        kept, dead = refs, [(reason, refs[index]) for index, reason in bad]
        if bad:
            invalid = {index for index, _ in bad}
            kept = [refs[index] for index in range(len(refs)) if index not in invalid]
        self.counters.assign(partition).received(len(refs), [reason for _, reason in bad])
        self.meter.add(len(refs), nbytes)
        self._emit(self.counters.add_many(partition, users, times, kept), dead)
        if self.early.due():
            self.emit_provisional()

    def _emit(self, emitted: Emitted, dead: Sequence[tuple[str, Any]] = ()) -> None:
        self.records.write(emitted.results)
        if dead or emitted.dead:
            self.dead_letters.write([*dead, *emitted.dead])

    def emit_provisional(self) -> None:
        self.records.write(self.counters.provisional())

    def advance_idle(self, partition: int, watermark: int | None) -> None:
        """A quiet partition: its event time moves on, and what it holds open is final now."""
        self._emit(self.counters.advance_idle(partition, watermark))
        self._emit(self.counters.close_quiet(partition))

    def flush_all(self) -> None:
        """End of input: every held frame decided, every open window emitted."""
        self._emit(self.counters.flush())

    def status_line(self, lag: int | None = None) -> str:
        p = self.counters
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
        p = self.counters
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
