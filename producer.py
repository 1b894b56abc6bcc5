#!/usr/bin/env python3
"""Streams a JSON Lines sample (plain or gzip) into the `events` topic. See --help."""
import os
import signal
import sys

# Ctrl-C while starting: exit 130 at once. An exception raised here could land inside an import's
# callback and be printed there as a traceback.
signal.signal(signal.SIGINT, lambda *_: os._exit(130))
from uniqcount.cli import venv  # noqa: E402

venv.ensure()
from uniqcount.cli.producer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
