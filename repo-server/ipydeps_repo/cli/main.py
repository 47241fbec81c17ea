"""The ``ipydeps-repo`` command line: every command module, imported by name, and ``main``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import RepoError
from ..farm.cli import register as register_farm
from ..settings import default_data_dir
from .arguments import add_data_argument
from .console import warn
from .files import register as register_files
from .mirror import register as register_mirror
from .releases import register as register_releases
from .server import register as register_server
from .tokens import register as register_tokens

# Each adds its subcommands and sets ``func=<callable(args) -> int>`` on its parsers with
# ``set_defaults``; the order is the order of ``--help``.
COMMANDS: tuple[Callable[[Any], None], ...] = (
    register_server,
    register_tokens,
    register_files,
    register_mirror,
    register_farm,
    register_releases,
)


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
    for register in COMMANDS:
        register(subparsers)
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
