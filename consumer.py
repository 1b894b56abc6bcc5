#!/usr/bin/env python3
"""Counts unique users per minute, hour, day, week, month and year from the `events` topic (or a
file / stdin). See --help."""
import signal
import sys

signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # Ctrl-C while starting: no traceback
from uniqcount.cli import venv  # noqa: E402

venv.ensure()
from uniqcount.cli.consumer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
