"""Settings: command-line flag > environment variable > config.env > built-in default.

Every setting is declared once here; `config.env` documents the same names, and the scripts
derive their flags from this registry, so a setting cannot exist in one place and not the other.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NoReturn

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from uniqcount import REPO
from uniqcount.core.granularities import Granularity, parse_granularities
from uniqcount.kafka_client import security
from uniqcount.runtime.setting_types import (
    at_least,
    auto_or_boolean,
    boolean,
    choice,
    duration,
    granularity_name,
    in_range,
    lg_k,
    port,
    retention_by_granularity,
    rolling_lengths,
    server_list,
    topic_name,
)

DEFAULT_CONFIG_FILE = REPO / "config.env"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str
    flag_name: str = ""  # when the flag is not simply the lower-cased name
    secret: bool = False  # a password: no flag, not in the repr

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.name.lower().replace("_", "-"))


def setting(default: str, help: str, parse: Callable[[str], Any] = str, flag_name: str = "",
            secret: bool = False) -> Any:
    """A field of Settings: its default (as config.env would write it), its help and its parser; a
    secret is left out of the repr too."""
    return dataclasses.field(metadata={"setting": (default, help, parse, flag_name, secret)}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Every setting, parsed: built once (`load`) from flag > environment > config file > default.
    Each field is declared here with its default, help and parser, and nowhere else: config.env
    documents the same names (upper-case), and the scripts derive their flags from these."""
    bootstrap_servers: str = setting("localhost:9092",
                "Kafka bootstrap servers, comma-separated host:port", server_list)
    security_protocol: str = setting("PLAINTEXT",
                "how every client talks to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT (a user and "
                "password) or SASL_SSL (both)", choice("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    sasl_mechanism: str = setting("SCRAM-SHA-512", "with SASL_*: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN",
                choice("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"))
    sasl_username: str = setting("", "with SASL_*: the user")
    sasl_password: str = setting("",
                "with SASL_*: the password, never shown; keep it out of config.env (set it in the environment, or "
                "use SASL_PASSWORD_FILE); no flag: the command line is visible to every user of the machine",
                secret=True)
    sasl_password_file: str = setting("", "with SASL_*: a file holding the password (readable by its owner only)")
    ssl_cafile: str = setting("",
                "with SSL or SASL_SSL: the CA certificate(s) that signed the brokers' (PEM); empty: the system's")
    ssl_certfile: str = setting("", "with SSL or SASL_SSL, mutual TLS: this client's certificate (PEM)")
    ssl_keyfile: str = setting("", "with SSL or SASL_SSL, mutual TLS: this client's private key (PEM)")
    ssl_check_hostname: bool = setting("true",
                "with SSL or SASL_SSL: the broker's certificate must name the host connected to", boolean)
    topic: str = setting("events", "topic of the input frames", topic_name)
    output_topic: str = setting("events-output", "topic of the count records (compacted)", topic_name)
    dlq_topic: str = setting("events-dlq",
                "topic of the dead letters: frames not counted, unchanged, with a `reason` header", topic_name)
    consumer_group: str = setting("uniqcount", "consumer group of consumer.py", flag_name="group")
    topic_partitions: int = setting("1", "partitions of the input topic when ./run.sh creates it", at_least(1))
    reset_topics: str | bool = setting("auto",
                "./run.sh empties the topics before loading: true, false, or auto (only on a local broker)", auto_or_boolean)
    producer_compression: str = setting("zstd", "compression of produced batches: zstd, lz4, snappy, gzip or none",
                                        choice("zstd", "lz4", "snappy", "gzip", "none"))
    producer_linger_ms: int = setting("20", "how long the consumer's output producer waits to fill a batch", at_least(0))
    producer_batch_bytes: int = setting("1048576", "most bytes in a produced batch (producer.py sends input blocks this large)", at_least(1024))
    fetch_max_bytes: int = setting("16777216", "consumer: most bytes one fetch returns", at_least(1024))
    max_partition_fetch_bytes: int = setting("4194304", "consumer: most bytes per partition per fetch", at_least(1024))
    max_poll_records: int = setting("20000", "consumer: most records handed over per poll", at_least(1))
    session_timeout_ms: int = setting("10000",
                "consumer: how long the group waits for a crashed consumer before a restarted or other one "
                "takes its partitions (Kafka's default: 45000)", at_least(1))
    checkpoint_seconds: float = setting("5",
                "consumer: seconds between checkpoints, each one Kafka transaction of the records, dead letters, "
                "state and offsets since the last: read_committed readers see results this much later at most, "
                "and a restart redoes at most this much work", at_least(0.1, float))
    instance_id: str = setting("",
                "consumer: its name for transactions, the same across its restarts (transactional id "
                "<CONSUMER_GROUP>-<INSTANCE_ID>), one per process; empty: <host>-<n>, the lowest slot of the host "
                "that no running consumer of the group holds, so consumers started alike never share one")
    consumers: int = setting("1",
                "./run.sh: how many consumer processes it starts in CONSUMER_GROUP, alike (an INSTANCE_ID set gets -0, -1, ...)", in_range(1, 64, "from 1 to 64 consumer processes"))
    input_keyed_by_uid: bool = setting("false",
                "consumer: the input topic is keyed by uid with Kafka's default partitioner (producer.py --key uid), "
                "so partitions never share a user: partial results of exact windows carry counts, not users", boolean)
    broker_wait_seconds: float = setting("600",
                "how long consumer.py and producer.py wait for a broker that went away (retrying, and saying "
                "so in the status line) before they stop with one line", at_least(10, float))
    allowed_lateness: int = setting("5",
                "seconds the watermark trails the largest event time; 0 = emit when a later minute arrives", at_least(0))
    late_retention: int = setting("3600",
                "seconds of event time after a window's end during which late frames still correct it; "
                "a frame too late for every granularity is dead-lettered as too_late", at_least(0))
    outlier_jump: int = setting("600",
                "a frame this many seconds ahead of the stream is held until later frames agree, "
                "else dead-lettered as ts_outlier; 0 = off", at_least(0))
    emit_early_every: float = setting("0",
                "wall-clock seconds between provisional records (final: false) of the windows holding open minutes; "
                "0 = none (longer windows also get one whenever a minute closes)", at_least(0, float))
    granularities: list[Granularity] = setting("minute,hour,day,week,month,year",
                "UTC calendar windows to count, comma-separated: minute, hour, day, week (ISO, from Monday), "
                "month, year", parse_granularities)
    exact_up_to: str = setting("hour",
                "granularities up to this one count exactly; longer ones use HyperLogLog (estimate and 95% bounds)", granularity_name)
    hll_lg_k: int = setting("14",
                "HyperLogLog size: 2^lg_k registers, relative standard error 1.04/sqrt(2^lg_k) (0.81% at 14)", lg_k)
    sketch_retention: dict[str, int] = setting("minute:7d,hour:92d,day:800d",
                "consumer: event time each final minute, hour and day stays in <OUTPUT_TOPIC>-sketches, so that "
                "./run.sh query can unite any range (docs/QUERIES.md); empty: nothing stored",
                retention_by_granularity)
    sketch_exact_for: int = setting("1d",
                "consumer: event time a stored window counted exactly (EXACT_UP_TO) keeps its users' 64-bit hashes, "
                "so that ranges in it are exact; then its HyperLogLog sketch alone", duration)
    rolling: dict[str, int] = setting("",
                "unique users of the last 24h, 7d, 30d... (DAU, WAU, MAU), published at the end of every final "
                "minute as records rolling_24h..., corrected by late frames (docs/QUERIES.md); needs minutes counted",
                rolling_lengths)
    metrics_port: int | None = setting("",
                "consumer: serve metrics in the Prometheus format on this port (http://host:port/metrics); "
                "empty: none", lambda text: port(text) if text.strip() else None)
    serve_port: int = setting("8080",
                "./run.sh serve: the live page and its JSON API on http://SERVE_HOST:SERVE_PORT/", port)
    serve_host: str = setting("127.0.0.1",
                "./run.sh serve: the address to listen on (0.0.0.0: every interface; the page has no sign-in)")
    idle_flush_seconds: float = setting("10",
                "when caught up and no frame came for this many wall-clock seconds, every open window is "
                "published final (a frame that still comes revises it) and the watermark moves on with the "
                "wall clock", at_least(0, float))
    status_interval: float = setting("5", "seconds between status lines on stderr", at_least(0, float))
    sample_path: str = setting("data/stream.jsonl.gz", "the sample ./run.sh loads (relative to the repo)")
    sample_url: str = setting("http://tx.tamedia.ch.s3.amazonaws.com/challenge/data/stream.jsonl.gz",
                "where ./run.sh tries to download the sample when SAMPLE_PATH is missing (empty: never)")
    local_controller_port: int = setting("9093",
                "port of the local broker's KRaft controller listener", port)
    local_broker_heap: str = setting("512m", "Java heap of the local broker (-Xmx)")
    local_broker_dir: str = setting(".kafka",
                "folder of the local broker's config, data and logs (relative to the repo)")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


SETTINGS: dict[str, Setting] = {f.name.upper(): Setting(f.name.upper(), *f.metadata["setting"])
                                 for f in dataclasses.fields(Settings)}
# where the brokers are and how to talk to them: every script that makes a Kafka client takes these
CONNECTION = ["BOOTSTRAP_SERVERS", "SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD",
              "SASL_PASSWORD_FILE", "SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE", "SSL_CHECK_HOSTNAME"]


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
         flags: Mapping[str, Any] | None = None) -> Settings:
    """All settings, parsed, with each source overriding the one before."""
    values: dict[str, Any] = {}
    for name, (raw, _) in raw_values(path, environ).items():
        try:
            values[name] = SETTINGS[name].parse(raw)
        except ValueError as exc:
            raise SystemExit(f"error: setting {name}={raw!r} is not valid: {exc}") from None
        if flags and flags.get(name) is not None:
            values[name] = flags[name]
    settings = Settings(**{name.lower(): value for name, value in values.items()})
    try:
        security.check(settings)
    except security.SecurityMistake as exc:
        raise SystemExit(f"error: {exc}") from None
    return settings


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
        if setting.secret:
            continue
        value, source = raw[name]
        parser.add_argument(setting.flag, dest=name, type=flag_type(setting.parse), default=None,
                            help=f"{setting.help} [{name}={value}, from {source}]".replace("%", "%%"))


def from_args(args: argparse.Namespace) -> Settings:
    return load(flags={k: v for k, v in vars(args).items() if k in SETTINGS})


if __name__ == "__main__":  # ./run.sh reads a setting: python -m uniqcount.runtime.config NAME
    import sys
    print(getattr(load(), sys.argv[1].lower()))
