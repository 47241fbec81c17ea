"""Options several commands share: the data directory, stored copies, the inflate limits."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..settings import DATA_ENV, DEFAULT_DATA_DIR, STORED_COPIES_ENV

# Where the commands that talk to a running server take their --token and --url from.
TOKEN_ENV = "IPYDEPS_REPO_TOKEN"
URL_ENV = "IPYDEPS_REPO_URL"


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--data DIR`` to ``parser`` (main() also adds it to any command that lacks it)."""
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"data directory (default: ${DATA_ENV}, else ./{DEFAULT_DATA_DIR})",
    )


def add_stored_copies_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--stored-copies/--no-stored-copies`` (None when absent: the environment decides)."""
    parser.add_argument(
        "--stored-copies",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write a .stored copy (members uncompressed) beside each wheel and advertise it "
        "to ipydeps clients; about 3x the disk of a compiled wheel "
        f"(default: ${STORED_COPIES_ENV}, else on)",
    )


def add_inflate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-inflated``, ``--max-member`` and ``--max-inflate-ratio`` (zip bomb guard)."""
    parser.add_argument(
        "--max-inflated",
        default=None,
        metavar="SIZE",
        help="most a wheel may inflate to in total (default 2G)",
    )
    parser.add_argument(
        "--max-member",
        default=None,
        metavar="SIZE",
        help="most one member of a wheel may inflate to (default 1G)",
    )
    parser.add_argument(
        "--max-inflate-ratio",
        type=int,
        default=None,
        metavar="N",
        help="most a wheel may inflate to per byte of it, once past 64M (default 100)",
    )
