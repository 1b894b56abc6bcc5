"""What a setting's text may be: each parser turns it into its value or raises ValueError with
the reason the user is shown (config.py says which setting)."""
from __future__ import annotations

import re
from typing import Any, Callable

from uniqcount.core.granularities import GRANULARITIES
from uniqcount.kafka_client.probe import parse_servers


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


def server_list(text: str) -> str:
    for _, number in parse_servers(text):  # raises for a server without its port
        if not 1 <= number <= 65535:
            raise ValueError(f"port {number} is not 1 to 65535")
    return text.strip()


LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def topic_name(text: str) -> str:
    """Kafka's own rule for topic names, checked before any topic is deleted or created."""
    if not LEGAL_TOPIC.fullmatch(text) or text in (".", ".."):
        raise ValueError("a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'")
    return text


def choice(*names: str) -> Callable[[str], str]:
    """One of `names`, in any case, as spelled there (Kafka's own names are upper case)."""
    spelled = {name.lower(): name for name in names}

    def parse(text: str) -> str:
        if text.strip().lower() not in spelled:
            raise ValueError(f"expected one of {', '.join(names)}")
        return spelled[text.strip().lower()]
    return parse


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def duration(text: str) -> int:
    """Seconds, from `90`, `30s`, `15m`, `24h`, `7d` or `2w`."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match:
        raise ValueError(f"{text.strip()!r} is no duration: a whole number and s, m, h, d or w (e.g. 24h, 7d)")
    return int(match[1]) * UNITS[match[2] or "s"]


STORABLE = ("minute", "hour", "day")


def retention_by_granularity(text: str) -> dict[str, int]:
    """`minute:7d,hour:92d,day:800d` -> seconds per granularity; empty: none."""
    kept: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, length = item.partition(":")
        if name.strip() not in STORABLE or not length:
            raise ValueError(f"expected granularity:duration items of {', '.join(STORABLE)} (e.g. minute:7d), "
                             f"got {item!r}")
        kept[name.strip()] = duration(length)
    return kept


def rolling_lengths(text: str) -> dict[str, int]:
    """`24h,7d,30d` -> seconds by name, each whole minutes; empty: none."""
    lengths = {part.strip().lower(): duration(part) for part in text.split(",") if part.strip()}
    if any(length <= 0 or length % 60 for length in lengths.values()):
        raise ValueError(f"expected whole minutes above 0 (e.g. 24h,7d,30d), got {text.strip()!r}")
    if len(set(lengths.values())) < len(lengths):
        raise ValueError(f"two names for one length in {text.strip()!r}")
    return lengths
