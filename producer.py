#!/usr/bin/env python3
"""Streams a JSON Lines sample (plain or gzip) into the `events` topic. See --help."""
import sys

from uniqcount.producer_cli import main

if __name__ == "__main__":
    sys.exit(main())
