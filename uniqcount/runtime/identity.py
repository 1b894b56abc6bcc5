"""Who a consumer is to the broker: its transactional id, `<CONSUMER_GROUP>-<name>`.

- INSTANCE_ID given: the name is it, one per process (two processes given one name fence each
  other, and the one fenced twice stops with one line: committer.py).
- INSTANCE_ID empty (the default): `<host>-<n>`, with n the lowest slot of this host that no running
  consumer of the group holds: a lock file per slot in the temporary folder, held (flock) for the
  life of the process. So any number of consumers started alike on one host, or on many, get ids of
  their own. A consumer that dies frees its slot at once (the kernel drops the lock), so its restart
  takes the same id, and its start aborts what the dead one left open: it resumes in seconds. A
  zombie (a process the group dropped while it still runs) is fenced by the group's generation
  (KIP-447), whatever its id.
"""
from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path
from typing import IO
from urllib.parse import quote

MOST_SLOTS = 1024  # consumers of one group on one host


class NoSlot(Exception):
    """One line for the user."""


class Identity:
    def __init__(self, transactional_id: str, held: IO[bytes] | None = None):
        """`held`: the slot's lock file, open for as long as the process runs."""
        self.transactional_id = transactional_id
        self.held = held

    def release(self) -> None:
        if self.held is not None:
            self.held.close()
            self.held = None


def slots_folder() -> Path:
    return Path(tempfile.gettempdir()) / f"uniqcount-slots-{os.getuid()}"


def identity(group: str, instance_id: str, folder: Path | None = None) -> Identity:
    if instance_id:
        return Identity(f"{group}-{instance_id}")
    folder = folder or slots_folder()
    host = socket.gethostname()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(MOST_SLOTS):
            lock = open(folder / f"{quote(group, safe='')}.{slot}.lock", "wb")  # held for the process's life
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            return Identity(f"{group}-{host}-{slot}", lock)
    except OSError as exc:
        raise NoSlot(f"cannot hold a consumer slot in {folder} ({exc.strerror}): set INSTANCE_ID, one per "
                     "consumer process") from None
    raise NoSlot(f"{MOST_SLOTS} consumers of the group {group} already run on this host (slots in {folder})")
