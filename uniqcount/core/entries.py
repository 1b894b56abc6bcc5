"""The byte form of everything the consumer keeps in Kafka (state entries, partial results): a
MessagePack list that starts with the format's version, so that a later version can tell."""
from __future__ import annotations

from typing import Any

import msgspec

VERSION = 1
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


class FormatError(ValueError):
    """An entry this version cannot read (another format version, or not an entry at all)."""


def entry(*fields: Any) -> bytes:
    return _encode([VERSION, *fields])


def fields(data: bytes) -> list[Any]:
    try:
        version, *values = _decode(data)
    except (msgspec.DecodeError, TypeError, ValueError) as exc:
        raise FormatError(f"not an entry of uniqcount's: {exc}") from None
    if version != VERSION:
        raise FormatError(f"entry of format version {version}; this version reads {VERSION}")
    return values
