"""Frames nested deeper than msgspec goes (it stops at Python's recursion limit, ~1000 levels).

Such a frame is still judged by its top-level `uid` and `ts`: its grammar is checked here without
recursion (one regex token at a time, a stack of open brackets), and what is kept is a small
document of just those two values, which the ordinary parser then judges. Pure Python, so slow
(~1 µs a token), but only frames that msgspec refused for their depth come here.
"""
from __future__ import annotations

import re

import msgspec

# one JSON token after optional white space: a string, a number, a literal, or punctuation.
# Bytes >= 0x80 pass inside strings unchecked, as msgspec skips the strings of keys it does not keep.
_TOKEN = re.compile(rb'[ \t\n\r]*(?:("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*")'
                    rb'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)|(true|false|null)|([{}\[\]:,]))')
_SPACE = re.compile(rb"[ \t\n\r]*")
_KEPT = ("uid", "ts")
_CLOSE = {b"{": b"}", b"[": b"]"}


def _cut_number(number: bytes, after: bytes) -> bool:
    """The number token ends where msgspec's number does not: a digit after a leading 0, a dot with
    no fraction, an e with no exponent (msgspec says malformed JSON, not "not an object")."""
    exponent = b"e" in number or b"E" in number
    return after.isdigit() or (after == b"." and b"." not in number and not exponent) or \
        (after in (b"e", b"E") and not exponent)


class NotJson(ValueError):
    """The bytes are not one JSON document."""


class NotObject(ValueError):
    """One JSON document, but not an object."""


def _key(string: bytes) -> str:
    """A top-level key; one with invalid UTF-8 is no `uid` or `ts` (msgspec does not decode it either)."""
    try:
        key: str = msgspec.json.decode(string)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return ""
    return key


def top_level(data: bytes) -> bytes:
    """`{"uid": ..., "ts": ...}` with the top-level values of those keys that `data` has (a nested
    array or object stands as an empty one: it is no valid uid or ts either way)."""
    first = _TOKEN.match(data)
    if first is None or first.group(4) in (b"]", b"}", b":", b","):
        raise NotJson("no JSON value at the start")
    if first.group(4) != b"{":  # as msgspec, which judges the type by the first token
        if first.group(2) is not None and _cut_number(first.group(2), data[first.end():first.end() + 1]):
            raise NotJson("a malformed number")
        raise NotObject("not an object")
    stack: list[bytes] = []
    state = "value"  # value | first_value | key | first_key | colon | next | done
    key = ""
    value_start = 0
    kept: dict[str, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        match = _TOKEN.match(data, pos)
        if match is None:
            if _SPACE.fullmatch(data, pos):
                break
            raise NotJson(f"unexpected byte at {pos}")
        string, number, literal, punct = match.groups()
        start, pos = match.start(match.lastindex or 0), match.end()
        closed = False
        if state in ("value", "first_value"):
            if state == "first_value" and punct == b"]":
                stack.pop()
                closed = True
            elif punct in (b"{", b"["):
                if len(stack) == 1:
                    value_start = start
                stack.append(punct)
                state = "first_key" if punct == b"{" else "first_value"
            elif punct is None:
                if len(stack) == 1:
                    value_start = start
                closed = True
            else:
                raise NotJson(f"expected a value at {start}")
        elif state in ("key", "first_key"):
            if state == "first_key" and punct == b"}":
                stack.pop()
                closed = True
            elif string is not None:
                if len(stack) == 1:
                    key = _key(string)
                state = "colon"
            else:
                raise NotJson(f"expected a key at {start}")
        elif state == "colon":
            if punct != b":":
                raise NotJson(f"expected ':' at {start}")
            state = "value"
        elif state == "next":
            if punct == b",":
                state = "key" if stack[-1] == b"{" else "value"
            elif punct is not None and punct == _CLOSE[stack[-1]]:
                stack.pop()
                closed = True
            else:
                raise NotJson(f"expected ',' or a closing bracket at {start}")
        else:
            raise NotJson(f"data after the document at {start}")
        if closed:
            if len(stack) == 1 and stack[0] == b"{" and key in _KEPT:
                value = data[value_start:pos]
                kept[key] = b"[]" if value[:1] in (b"[", b"{") else value
            state = "next" if stack else "done"
    if state != "done":
        raise NotJson("truncated")
    return b"{" + b",".join(b'"%s":%s' % (k.encode(), v) for k, v in kept.items()) + b"}"
