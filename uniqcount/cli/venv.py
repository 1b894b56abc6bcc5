"""`./consumer.py` and `./producer.py` work without activating anything: started by a Python that
lacks the project's packages, they run again with the project's own `.venv` (which ./run.sh makes).
Standard library only: it runs before any package is known to be there."""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from uniqcount import REPO

VENV_PYTHON = REPO / ".venv" / "bin" / "python"


NEEDED = ("kafka", "dotenv", "msgspec")  # what every script imports


def ensure() -> None:
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if not missing:
        return
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), *sys.argv])
    sys.exit(f"error: Python package {missing[0]!r} is missing: run ./run.sh once (it makes .venv from "
             "requirements.txt), or: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt")
