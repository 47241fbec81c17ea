"""Output of the command line: results to stdout, messages and progress to stderr."""

from __future__ import annotations

import sys


def say(text: str) -> None:
    """Write a result line to stdout and flush (scripts and tests read it)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """Write a message or progress line to stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
