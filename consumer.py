#!/usr/bin/env python3
"""Counts unique users per minute, hour, day, week, month and year from the `events` topic (or a
file / stdin). See --help."""
import os
import signal
import sys

# Ctrl-C while starting: exit 130 at once. An exception raised here could land inside an import's
# callback and be printed there as a traceback.
signal.signal(signal.SIGINT, lambda *_: os._exit(130))
from uniqcount.cli import venv  # noqa: E402

venv.ensure()
from uniqcount.cli.consumer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
