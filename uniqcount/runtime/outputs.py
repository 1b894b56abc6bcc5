"""Where results and dead letters go: Kafka topics, stdout, a file. Thin edges, no decisions."""
from __future__ import annotations

import sys
from collections import Counter
from typing import Any, BinaryIO, Callable, Protocol

from uniqcount.core.records import encode, record_key, record_kind, window_record
from uniqcount.core.rolling import RollingWindows
from uniqcount.core.sketches import StoredWindows
from uniqcount.core.windowset import Result
from uniqcount.kafka_client.sends import Sends


class OutputError(Exception):
    """A result or dead letter that could not be written (full disk, ...): one line for the user."""


def _written_to(name: str, write: Callable[[], None]) -> None:
    try:
        write()
    except BrokenPipeError:
        raise  # the reader went away (e.g. `| head`): not a failure
    except OSError as exc:
        raise OutputError(f"cannot write to {name}: {exc.strerror or exc}") from None


class Records:
    """Count records to stdout (one JSON line each, unless quiet) and to a Kafka topic (if sends)."""

    def __init__(self, quiet: bool, sends: Sends | None = None, topic: str = "", stored: StoredWindows | None = None,
                 rolling: RollingWindows | None = None):
        """`stored`: where final records' windows are stored (core/sketches.py), written at checkpoints;
        `rolling`: the rolling windows (core/rolling.py) the final minutes lead to, written as records."""
        self.quiet = quiet
        self.sends = sends
        self.topic = topic
        self.stored = stored
        self.rolling = rolling
        self.written: Counter[str] = Counter()  # records by kind (records.record_kind)

    def write(self, results: list[Result]) -> None:
        if self.rolling is not None:
            results = results + self.rolling.add(results)
        lines = []
        for result in results:
            record = window_record(result)
            data = encode(record)
            lines.append(data)
            self.written[record_kind(result)] += 1
            if self.sends is not None:
                self.sends.send(self.topic, record_key(record), data)
        if self.stored is not None:
            self.stored.add(results)
        if lines and not self.quiet:
            _written_to("stdout", lambda: _write_flush(sys.stdout.buffer, b"\n".join(lines) + b"\n"))


class DeadLetters(Protocol):
    """Where frames not counted go; the counts by reason are the core's (the reconciliation)."""

    def write(self, letters: list[tuple[str, Any]]) -> None: ...

    def close(self) -> None: ...


class KafkaDeadLetters:
    """Each frame unchanged (value and key) on the dead-letter topic; why and where from in headers.
    A record without a value (a tombstone) goes with an empty one and a `null_value` header."""

    def __init__(self, sends: Sends, topic: str):
        self.sends = sends
        self.topic = topic

    def write(self, letters: list[tuple[str, Any]]) -> None:
        for reason, record in letters:
            headers = [("reason", reason.encode()),
                       ("source", f"{record.topic}/{record.partition}/{record.offset}".encode())]
            if record.value is None:
                headers.append(("null_value", b"true"))
            self.sends.send(self.topic, _bytes(record.key), _bytes(record.value) or b"", headers, reason)

    def close(self) -> None:
        """The producer is shared with the records and closed by its owner."""


def _bytes(data: Any) -> bytes | None:
    """Records from record_batches hold memoryviews into their inflated batch: a copy, so that a dead
    letter waiting in the producer's buffer does not keep its whole batch (a MB or more) alive."""
    return None if data is None else bytes(data)


class FileDeadLetters:
    """`reason<TAB>frame` per line: a frame holds no raw newline (input lines were split on them), and
    everything after the first tab is the frame unchanged."""

    def __init__(self, path: str):
        """Opened before anything else is done, so a wrong path ends the run before it starts."""
        self.path = path
        try:
            self.file: BinaryIO = open(path, "wb")
        except OSError as exc:
            raise OutputError(f"cannot write the dead letters to {path}: {exc.strerror or exc}") from None

    def write(self, letters: list[tuple[str, Any]]) -> None:
        _written_to(self.path, lambda: self.file.writelines(
            reason.encode() + b"\t" + frame + b"\n" for reason, frame in letters))

    def close(self) -> None:
        _written_to(self.path, self.file.close)


def _write_flush(stream: BinaryIO, data: bytes) -> None:
    stream.write(data)
    stream.flush()


class CountedOnly:
    """--input without --dlq: dead letters are counted in the summary, not written."""

    def write(self, letters: list[tuple[str, Any]]) -> None:
        pass

    def close(self) -> None:
        pass
