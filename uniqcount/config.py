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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = REPO / "config.env"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = str

    @property
    def flag(self) -> str:
        return "--" + self.name.lower().replace("_", "-")


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in [
        Setting("BOOTSTRAP_SERVERS", "localhost:9092",
                "Kafka bootstrap servers, comma-separated host:port"),
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


def add_flags(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """Flags for the named settings; their defaults come from load(), so --help shows the source."""
    for name in names:
        setting = SETTINGS[name]
        parser.add_argument(setting.flag, dest=name, type=setting.parse, default=None,
                            help=f"{setting.help} [{name}, default {setting.default}]")


def from_args(args: argparse.Namespace) -> dict[str, Any]:
    return load(flags={k: v for k, v in vars(args).items() if k in SETTINGS})
