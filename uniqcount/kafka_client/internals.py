"""The kafka-python internals uniqcount replaces or calls, checked before they are used: another
version of the library fails at start-up with one line, not with a traceback deep in the hot path
or, worse, by quietly taking the slow path. Written against kafka-python 3.0.12 (requirements.txt)."""
from __future__ import annotations

from typing import Any, Iterable

import kafka

WRITTEN_FOR = "3.0.12"


class LibraryMismatch(Exception):
    """The installed kafka-python lacks what a patch needs: one line for the user."""


def _has(obj: Any, dotted: str) -> bool:
    for name in dotted.split("."):
        if not hasattr(obj, name):
            return False
        obj = getattr(obj, name)
    return True


def require(obj: Any, names: Iterable[str], user: str) -> None:
    """Each dotted name must exist on `obj`; `user` says what needs them."""
    missing = [name for name in names if not _has(obj, name)]
    if missing:
        raise LibraryMismatch(f"kafka-python {kafka.__version__} has no {', '.join(missing)}, which {user} "
                              f"needs: uniqcount is written for kafka-python {WRITTEN_FOR} "
                              "(pip install -r requirements.txt)")
