#!/usr/bin/env python3
"""Counts unique users per minute from the `events` topic (or a file / stdin). See --help."""
import sys

from uniqcount.consumer_cli import main

if __name__ == "__main__":
    sys.exit(main())
