#!/usr/bin/env python3
"""Streams a JSON Lines sample (plain or gzip) into the `events` topic. See --help."""
import signal
import sys

signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # Ctrl-C while starting: no traceback
from uniqcount.cli import venv  # noqa: E402

venv.ensure()
from uniqcount.cli.producer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
