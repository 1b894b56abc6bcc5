"""The compiled hot path (native/: batches decoded, frames scanned) and its pure-Python twins write
the same records, byte for byte: users are uid hashes from the parse on, so nothing in the output
depends on which path found them (not even HLL estimates, which depend on the order of updates)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import LATE
from uniqcount import REPO

native = pytest.importorskip("uniqcount_native", reason="native/ is not built (pip install ./native)")

BLOCKED = ("import runpy, sys; sys.modules['uniqcount_native'] = None; sys.argv = ['consumer.py', *sys.argv[1:]]; "
           "runpy.run_path('consumer.py', run_name='__main__')")


@pytest.mark.skipif(not LATE.exists(), reason="needs ../shared/data")
def test_the_compiled_path_and_the_python_path_write_the_same_records():
    args = ["--input", str(LATE), "--granularities", "minute,hour,day,week,month,year"]
    compiled = subprocess.run([sys.executable, "consumer.py", *args], cwd=REPO, capture_output=True, check=True)
    python = subprocess.run([sys.executable, "-c", BLOCKED, *args], cwd=REPO, capture_output=True, check=True)
    assert b"found in C" in compiled.stderr and b"parsed in Python" in python.stderr
    assert compiled.stdout.count(b"\n") > 100 and b'"estimate":"hll"' in compiled.stdout
    assert compiled.stdout == python.stdout
