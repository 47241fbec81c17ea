"""The ``ipydeps-repo`` command line: a registry of subcommand modules, and the main entry point."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import RepoError
from ..settings import DATA_ENV, DEFAULT_DATA_DIR, STORED_COPIES_ENV, default_data_dir
from .console import warn

# Modules that add subcommands: each exposes ``register(subparsers) -> None`` and sets
# ``func=<callable(args) -> int>`` on its parsers with ``set_defaults``.
# The mirror and farm engineers add their module here (one line each).
COMMAND_MODULES: list[str] = [
    "ipydeps_repo.cli.server",
    "ipydeps_repo.upstream.mirror",
    "ipydeps_repo.farm.cli",
    "ipydeps_repo.cli.releases",
]


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
    parser.add_argument("--max-inflated", default=None, metavar="SIZE",
                        help="most a wheel may inflate to in total (default 2G)")
    parser.add_argument("--max-member", default=None, metavar="SIZE",
                        help="most one member of a wheel may inflate to (default 1G)")
    parser.add_argument("--max-inflate-ratio", type=int, default=None, metavar="N",
                        help="most a wheel may inflate to per byte of it, once past 64M "
                        "(default 100)")


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    children = [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in action.choices.values()
    ]
    if not children:
        return [parser]
    return [leaf for child in children for leaf in _leaf_parsers(child)]


def build_parser() -> argparse.ArgumentParser:
    """Return the full parser with every registered module's subcommands."""
    parser = argparse.ArgumentParser(
        prog="ipydeps-repo",
        description="Serve, sign and publish the ipydeps repository "
        "(Alpine apks and a PEP 503/691 wheel index).",
        epilog="Run 'ipydeps-repo COMMAND --help' for a command's options.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    for leaf in _leaf_parsers(parser):
        if "--data" not in leaf._option_string_actions:
            add_data_argument(leaf)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return 0 on success, 1 on a domain error, 2 on a usage error."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "data", None) is None:
        args.data = default_data_dir()
    func = getattr(args, "func", None)
    if func is None:
        parser.error(f"command {args.command!r} has nothing to run")
    try:
        return int(func(args) or 0)
    except RepoError as error:
        warn(f"error: {error.message}")
        if error.hint:
            warn(f"hint: {error.hint}")
        return 1
    except KeyboardInterrupt:
        warn("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
