#!/usr/bin/env python3
"""Streams a JSON Lines sample (plain or gzip) into the `events` topic. See --help."""
import sys

from uniqcount import venv

venv.ensure()
from uniqcount.producer_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
