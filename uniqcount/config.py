"""Settings: command-line flag > environment variable > config.env > built-in default.

Every setting is declared once here; `config.env` documents the same names, and the scripts
derive their flags from this registry, so a setting cannot exist in one place and not the other.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from dotenv import dotenv_values

from .granularities import GRANULARITIES, parse_granularities

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO / "config.env"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    flag_name: str = ""  # when the flag is not simply the lower-cased name

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.name.lower().replace("_", "-"))


def boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in {"true", "false", "1", "0", "yes", "no"}:
        raise ValueError("expected true or false")
    return lowered in {"true", "1", "yes"}


def granularity_name(text: str) -> str:
    name = text.strip()
    if name not in GRANULARITIES:
        raise ValueError(f"expected one of {', '.join(GRANULARITIES)}")
    return name


def lg_k(text: str) -> int:
    value = int(text)
    if not 4 <= value <= 21:
        raise ValueError("DataSketches HLL takes lg_k from 4 to 21")
    return value


def auto_or_boolean(text: str) -> str | bool:
    return "auto" if text.strip().lower() == "auto" else boolean(text)


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("BOOTSTRAP_SERVERS", "localhost:9092",
                "Kafka bootstrap servers, comma-separated host:port"),
        Setting("TOPIC", "events", "topic of the input frames"),
        Setting("OUTPUT_TOPIC", "events-output", "topic of the count records (compacted)"),
        Setting("DLQ_TOPIC", "events-dlq",
                "topic of the dead letters: frames not counted, unchanged, with a `reason` header"),
        Setting("CONSUMER_GROUP", "uniqcount", "consumer group of consumer.py", flag_name="group"),
        Setting("TOPIC_PARTITIONS", "1", "partitions of the input topic when ./run.sh creates it", int),
        Setting("RESET_TOPICS", "auto",
                "./run.sh empties the topics before loading: true, false, or auto (only on a local broker)",
                auto_or_boolean),
        Setting("PRODUCER_COMPRESSION", "zstd", "compression of produced batches: zstd, lz4, gzip or none"),
        Setting("PRODUCER_LINGER_MS", "20", "how long the consumer's output producer waits to fill a batch", int),
        Setting("PRODUCER_BATCH_BYTES", "1048576", "most bytes in a produced batch (producer.py sends input blocks this large)", int),
        Setting("FETCH_MAX_BYTES", "16777216", "consumer: most bytes one fetch returns", int),
        Setting("MAX_PARTITION_FETCH_BYTES", "4194304", "consumer: most bytes per partition per fetch", int),
        Setting("MAX_POLL_RECORDS", "20000", "consumer: most records handed over per poll", int),
        Setting("SESSION_TIMEOUT_MS", "10000",
                "consumer: how long the group waits for a crashed consumer before a restarted or other one "
                "takes its partitions (Kafka's default: 45000)", int),
        Setting("ALLOWED_LATENESS", "5",
                "seconds the watermark trails the largest event time; 0 = emit when a later minute arrives",
                int),
        Setting("LATE_RETENTION", "3600",
                "seconds of event time after a window's end during which late frames still correct it; "
                "a frame too late for every granularity is dead-lettered as too_late", int),
        Setting("OUTLIER_JUMP", "600",
                "a frame this many seconds ahead of the stream is held until later frames agree, "
                "else dead-lettered as ts_outlier; 0 = off", int),
        Setting("EMIT_EARLY_EVERY", "0",
                "wall-clock seconds between provisional records (final: false) of the windows holding open minutes; "
                "0 = none (longer windows also get one whenever a minute closes)",
                float),
        Setting("GRANULARITIES", "minute,hour,day,week,month,year",
                "UTC calendar windows to count, comma-separated: minute, hour, day, week (ISO, from Monday), "
                "month, year", parse_granularities),
        Setting("EXACT_UP_TO", "hour",
                "granularities up to this one count exactly; longer ones use HyperLogLog (estimate and 95% bounds)",
                granularity_name),
        Setting("HLL_LG_K", "14",
                "HyperLogLog size: 2^lg_k registers, relative standard error 1.04/sqrt(2^lg_k) (0.81% at 14)",
                lg_k),
        Setting("IDLE_FLUSH_SECONDS", "10",
                "when caught up and no frame came for this many wall-clock seconds, the watermark moves on "
                "with the wall clock", float),
        Setting("STATUS_INTERVAL", "5", "seconds between status lines on stderr", float),
        Setting("SAMPLE_PATH", "data/stream.jsonl.gz", "the sample ./run.sh loads (relative to the repo)"),
        Setting("SAMPLE_URL", "http://tx.tamedia.ch.s3.amazonaws.com/challenge/data/stream.jsonl.gz",
                "where ./run.sh tries to download the sample when SAMPLE_PATH is missing (empty: never)"),
        Setting("LOCAL_CONTROLLER_PORT", "9093",
                "port of the local broker's KRaft controller listener", int),
        Setting("LOCAL_BROKER_HEAP", "512m", "Java heap of the local broker (-Xmx)"),
        Setting("LOCAL_BROKER_DIR", ".kafka",
                "folder of the local broker's config, data and logs (relative to the repo)"),
    ]
}


def config_file() -> Path:
    """UNIQCOUNT_CONFIG names another file, e.g. one per environment."""
    return Path(os.environ.get("UNIQCOUNT_CONFIG", DEFAULT_CONFIG_FILE))


def load(path: Path | None = None, environ: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All settings, parsed, with each source overriding the one before."""
    environ = os.environ if environ is None else environ
    path = config_file() if path is None else path
    from_file = {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}
    unknown = sorted(set(from_file) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"error: {path}: unknown setting(s) {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        raw = setting.default
        raw = from_file.get(name, raw)
        raw = environ.get(name, raw)
        try:
            values[name] = setting.parse(raw)
        except ValueError as exc:
            raise SystemExit(f"error: setting {name}={raw!r} is not valid: {exc}") from None
        if flags and flags.get(name) is not None:
            values[name] = flags[name]
    return values


def _flag_type(setting: Setting) -> Callable[[str], Any]:
    """The setting's parser, its ValueError shown by argparse as the reason (not "invalid value")."""
    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: {exc}") from None
    return parse


def add_flags(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Flags for the named settings; their defaults come from load(), so --help shows the source.
    argparse formats help with %, so a literal one (e.g. "95% bounds") is doubled."""
    for name in names:
        setting = SETTINGS[name]
        parser.add_argument(setting.flag, dest=name, type=_flag_type(setting), default=None,
                            help=f"{setting.help} [{name}, default {setting.default}]".replace("%", "%%"))


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return load(flags={k: v for k, v in vars(args).items() if k in SETTINGS})
