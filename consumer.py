#!/usr/bin/env python3
"""Counts unique users per minute from the `events` topic (or a file / stdin). See --help."""
import sys

from uniqcount import venv

venv.ensure()
from uniqcount.consumer_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
