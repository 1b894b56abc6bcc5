"""Settings: command-line flag > environment variable > config.env > built-in default.

Every setting is declared once here; `config.env` documents the same names, and the scripts
derive their flags from this registry, so a setting cannot exist in one place and not the other.
"""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NoReturn

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from uniqcount.core.granularities import GRANULARITIES, parse_granularities
from uniqcount.kafka_client.probe import parse_servers

from uniqcount import REPO
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


def in_range(low: int, high: int, why: str) -> Callable[[str], int]:
    """A whole number from `low` to `high`; `why` says the range to the user."""
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(why)
        return value
    return parse


lg_k = in_range(4, 21, "DataSketches HLL takes lg_k from 4 to 21")
port = in_range(1, 65535, "a port is 1 to 65535")


def auto_or_boolean(text: str) -> str | bool:
    return "auto" if text.strip().lower() == "auto" else boolean(text)


def at_least(low: float, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """A number no smaller than `low` (a negative lateness or size is a mistake, not a mode)."""
    def parse(text: str) -> Any:
        value = kind(text)
        if not value >= low:  # also refuses nan
            raise ValueError(f"must be at least {low}")
        return value
    return parse


def bootstrap_servers(text: str) -> str:
    for _, number in parse_servers(text):  # raises for a server without its port
        if not 1 <= number <= 65535:
            raise ValueError(f"port {number} is not 1 to 65535")
    return text.strip()


LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def topic(text: str) -> str:
    """Kafka's own rule for topic names, checked before any topic is deleted or created."""
    if not LEGAL_TOPIC.fullmatch(text) or text in (".", ".."):
        raise ValueError("a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'")
    return text


def choice(*names: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip().lower() not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return text.strip().lower()
    return parse


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("BOOTSTRAP_SERVERS", "localhost:9092",
                "Kafka bootstrap servers, comma-separated host:port", bootstrap_servers),
        Setting("TOPIC", "events", "topic of the input frames", topic),
        Setting("OUTPUT_TOPIC", "events-output", "topic of the count records (compacted)", topic),
        Setting("DLQ_TOPIC", "events-dlq",
                "topic of the dead letters: frames not counted, unchanged, with a `reason` header", topic),
        Setting("CONSUMER_GROUP", "uniqcount", "consumer group of consumer.py", flag_name="group"),
        Setting("TOPIC_PARTITIONS", "1", "partitions of the input topic when ./run.sh creates it", at_least(1)),
        Setting("RESET_TOPICS", "auto",
                "./run.sh empties the topics before loading: true, false, or auto (only on a local broker)",
                auto_or_boolean),
        Setting("PRODUCER_COMPRESSION", "zstd", "compression of produced batches: zstd, lz4, gzip or none",
                choice("zstd", "lz4", "gzip", "none")),
        Setting("PRODUCER_LINGER_MS", "20", "how long the consumer's output producer waits to fill a batch", at_least(0)),
        Setting("PRODUCER_BATCH_BYTES", "1048576", "most bytes in a produced batch (producer.py sends input blocks this large)", at_least(1024)),
        Setting("FETCH_MAX_BYTES", "16777216", "consumer: most bytes one fetch returns", at_least(1024)),
        Setting("MAX_PARTITION_FETCH_BYTES", "4194304", "consumer: most bytes per partition per fetch", at_least(1024)),
        Setting("MAX_POLL_RECORDS", "20000", "consumer: most records handed over per poll", at_least(1)),
        Setting("SESSION_TIMEOUT_MS", "10000",
                "consumer: how long the group waits for a crashed consumer before a restarted or other one "
                "takes its partitions (Kafka's default: 45000)", at_least(1)),
        Setting("CHECKPOINT_SECONDS", "5",
                "consumer: seconds between checkpoints, each one Kafka transaction of the records, dead letters, "
                "state and offsets since the last: read_committed readers see results this much later at most, "
                "and a restart redoes at most this much work", at_least(0.1, float)),
        Setting("INSTANCE_ID", "",
                "consumer: its name in the group, the same across its restarts (its transactional id is "
                "<CONSUMER_GROUP>-<INSTANCE_ID>); empty: the host name. Two consumers of a group need two"),
        Setting("CONSUMERS", "1",
                "./run.sh: how many consumer processes it starts in CONSUMER_GROUP (each INSTANCE_ID gets -0, -1, ...)",
                in_range(1, 64, "from 1 to 64 consumer processes")),
        Setting("INPUT_KEYED_BY_UID", "false",
                "consumer: the input topic is keyed by uid with Kafka's default partitioner (producer.py --key uid), "
                "so partitions never share a user: partial results of exact windows carry counts, not users",
                boolean),
        Setting("BROKER_WAIT_SECONDS", "600",
                "how long consumer.py and producer.py wait for a broker that went away (retrying, and saying "
                "so in the status line) before they stop with one line", at_least(10, float)),
        Setting("ALLOWED_LATENESS", "5",
                "seconds the watermark trails the largest event time; 0 = emit when a later minute arrives",
                at_least(0)),
        Setting("LATE_RETENTION", "3600",
                "seconds of event time after a window's end during which late frames still correct it; "
                "a frame too late for every granularity is dead-lettered as too_late", at_least(0)),
        Setting("OUTLIER_JUMP", "600",
                "a frame this many seconds ahead of the stream is held until later frames agree, "
                "else dead-lettered as ts_outlier; 0 = off", at_least(0)),
        Setting("EMIT_EARLY_EVERY", "0",
                "wall-clock seconds between provisional records (final: false) of the windows holding open minutes; "
                "0 = none (longer windows also get one whenever a minute closes)",
                at_least(0, float)),
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
                "with the wall clock", at_least(0, float)),
        Setting("STATUS_INTERVAL", "5", "seconds between status lines on stderr", at_least(0, float)),
        Setting("SAMPLE_PATH", "data/stream.jsonl.gz", "the sample ./run.sh loads (relative to the repo)"),
        Setting("SAMPLE_URL", "http://tx.tamedia.ch.s3.amazonaws.com/challenge/data/stream.jsonl.gz",
                "where ./run.sh tries to download the sample when SAMPLE_PATH is missing (empty: never)"),
        Setting("LOCAL_CONTROLLER_PORT", "9093",
                "port of the local broker's KRaft controller listener", port),
        Setting("LOCAL_BROKER_HEAP", "512m", "Java heap of the local broker (-Xmx)"),
        Setting("LOCAL_BROKER_DIR", ".kafka",
                "folder of the local broker's config, data and logs (relative to the repo)"),
    ]
}


def config_file() -> Path:
    """UNIQCOUNT_CONFIG names another file, e.g. one per environment; it must exist (a typo must not
    fall back to the defaults, which may reset topics on a local broker)."""
    named = os.environ.get("UNIQCOUNT_CONFIG")
    if named is None:
        return DEFAULT_CONFIG_FILE
    if not Path(named).is_file():
        raise SystemExit(f"error: UNIQCOUNT_CONFIG={named}: no such file")
    return Path(named)


def read_file(path: Path) -> dict[str, str]:
    """The settings in a config file; a line that is no `NAME=value` (nor a comment) is an error."""
    if not path.exists():
        return {}
    try:
        with open(path, encoding="utf-8") as stream:
            for binding in parse_stream(stream):
                if binding.error or (binding.key is not None and binding.value is None):
                    line = binding.original.line
                    raise SystemExit(f"error: {path}, line {line}: not NAME=value: "
                                     f"{binding.original.string.strip()[:60]!r}")
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"error: cannot read {path}: {exc}") from None
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def raw_values(path: Path | None = None, environ: Mapping[str, str] | None = None) -> dict[str, tuple[str, str]]:
    """(text, where it came from) of every setting, before any flag: the environment over the
    config file over the built-in default."""
    environ = os.environ if environ is None else environ
    path = config_file() if path is None else path
    from_file = read_file(path)
    unknown = sorted(set(from_file) - set(SETTINGS))
    if unknown:
        raise SystemExit(f"error: {path}: unknown setting(s) {', '.join(unknown)}")
    raw = {}
    for name, setting in SETTINGS.items():
        if name in environ:
            raw[name] = environ[name], "environment"
        elif name in from_file:
            raw[name] = from_file[name], path.name
        else:
            raw[name] = setting.default, "default"
    return raw


def load(path: Path | None = None, environ: Mapping[str, str] | None = None,
         flags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """All settings, parsed, with each source overriding the one before."""
    values: dict[str, Any] = {}
    for name, (raw, _) in raw_values(path, environ).items():
        try:
            values[name] = SETTINGS[name].parse(raw)
        except ValueError as exc:
            raise SystemExit(f"error: setting {name}={raw!r} is not valid: {exc}") from None
        if flags and flags.get(name) is not None:
            values[name] = flags[name]
    return values


class OneLineParser(argparse.ArgumentParser):
    """A wrong flag is a user mistake like a wrong setting: one line and exit code 1, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see --help)\n")


def flag_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A flag's parser, its ValueError shown by argparse as the reason (not "invalid value")."""
    def parse_flag(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not valid: {exc}") from None
    return parse_flag


def add_flags(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Flags for the named settings. Their help shows the value in force without the flag and where
    it comes from (environment, config file, default). argparse formats help with %, so a literal
    one (e.g. "95% bounds") is doubled."""
    raw = raw_values()
    for name in names:
        setting = SETTINGS[name]
        value, source = raw[name]
        parser.add_argument(setting.flag, dest=name, type=flag_type(setting.parse), default=None,
                            help=f"{setting.help} [{name}={value}, from {source}]".replace("%", "%%"))


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return load(flags={k: v for k, v in vars(args).items() if k in SETTINGS})


if __name__ == "__main__":  # ./run.sh reads a setting: python -m uniqcount.runtime.config NAME
    import sys
    print(load()[sys.argv[1]])
