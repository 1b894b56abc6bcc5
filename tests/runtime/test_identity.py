"""Transactional ids: consumers started alike get ids of their own, and a restart takes back the id
of the one that died (so its start aborts what that one left open)."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from uniqcount.runtime.identity import NoSlot, identity


def test_consumers_started_alike_get_slots_of_their_own_and_a_restart_takes_the_freed_one(tmp_path):
    host = socket.gethostname()
    first, second, third = (identity("g", "", tmp_path) for _ in range(3))
    assert [i.transactional_id for i in (first, second, third)] == [f"g-{host}-{n}" for n in range(3)]
    second.release()  # it died: the kernel drops its lock
    assert identity("g", "", tmp_path).transactional_id == f"g-{host}-1"
    assert identity("other group", "", tmp_path).transactional_id == f"other group-{host}-0"


def test_a_slot_is_held_by_a_process_until_it_ends(tmp_path):
    holding = ("import sys, time; from pathlib import Path; from uniqcount.runtime.identity import identity; "
               "me = identity('g', '', Path(sys.argv[1])); print(me.transactional_id, flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", holding, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip().endswith("-0")
        assert identity("g", "", tmp_path).transactional_id.endswith("-1")
    finally:
        holder.kill()
        holder.wait()
    assert identity("g", "", tmp_path).transactional_id.endswith("-0")  # the dead one's slot is free again


def test_an_instance_id_given_is_the_name():
    assert identity("g", "a", None).transactional_id == "g-a"


def test_a_folder_that_cannot_hold_slots_is_one_line(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    with pytest.raises(NoSlot, match="set INSTANCE_ID"):
        identity("g", "", blocked / "slots")
