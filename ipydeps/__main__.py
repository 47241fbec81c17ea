"""``python -m ipydeps install|plan|config|pip``: the terminal edge of ``ipydeps.pip()``.

Exit codes: 0 ok, 1 an ``IpydepsError`` (its message, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, get_args

from .errors import IpydepsError
from .notices import no_repository
from .pipargs import parse_install, read_requirement_file
from .settings_values import UpstreamPolicy

if TYPE_CHECKING:
    from .api import Result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipydeps", description="Install prebuilt packages from the repository."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("install", "install requirements (prebuilt only)"),
        ("plan", "print the plan and change nothing"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("requirements", nargs="*", metavar="REQUIREMENT")
        command.add_argument(
            "-r",
            "--requirement",
            action="append",
            default=[],
            metavar="FILE",
            help="read requirements from FILE",
        )
        command.add_argument("-U", "--upgrade", action="store_true")
        command.add_argument("-q", "--quiet", action="store_true")
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            help="list each package installed, and print why each "
            "source was chosen, retries and timings",
        )
        command.add_argument("--dry-run", action="store_true")
        command.add_argument("-i", "--index-url", help="repository URL (overrides config)")
        command.add_argument("--profile", help="configuration profile")
        command.add_argument("--upstream", choices=get_args(UpstreamPolicy))
        command.add_argument("--prefix", help="install into this environment (default: this one)")
    config = commands.add_parser("config", help="show the effective configuration")
    config.add_argument("--profile", help="configuration profile")
    # Handled before parsing (main), so pip's own options pass through untouched; listed
    # here so that --help names it.
    commands.add_parser(
        "pip",
        help="pip's command line: 'install' through ipydeps, "
        "anything else runs the real pip (the pip shim's entry)",
        add_help=False,
    )
    return parser


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")


def _complain(text: str) -> None:
    sys.stderr.write(f"ipydeps: {text}\n")


def _read_files(requirements: list[str], paths: Sequence[str]) -> list[str] | None:
    """Return requirements plus each file's lines; None if a file holds pip options."""
    collected = list(requirements)
    for path in paths:
        lines = read_requirement_file(path)
        if lines is None:
            return None
        collected += lines
    return collected


def pip_command(args: list[str]) -> int:
    """``python -m ipydeps pip ARGS``: the pip shim's entry (docker/pip-shim).

    ``install`` command lines ipydeps understands are carried out by ``ipydeps.pip()``;
    anything else replaces this process with the real pip, arguments unchanged: with
    upstream off, sealed to our repository or refused (``AirGapError``; see handoff.py).
    """
    install = parse_install(args)
    requirements = None
    if install is not None:
        requirements = _read_files(list(install.requirements), install.requirement_files)
    if install is None or requirements is None:
        from .magics import hand_off

        handoff = hand_off(args)
        if handoff.notice:
            _complain(handoff.notice.removeprefix("ipydeps: "))
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(
            sys.executable, [sys.executable, "-m", "pip", *handoff.args], dict(handoff.environ)
        )
    from . import api

    if install.verbose:
        _show_decisions()
    result = api.pip(
        requirements,
        upgrade=install.upgrade,
        quiet=install.quiet,
        dry_run=install.dry_run,
        index_url=install.index_url,
    )
    return _report(result, verbose=install.verbose, quiet=install.quiet)


def _show_decisions() -> None:
    """``-v``: print the ``ipydeps`` logger's trail on stderr.

    Each source chosen and why, retries, fallbacks from a stored copy to the wheel, timings.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ipydeps: %(message)s"))
    logger = logging.getLogger("ipydeps")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _report(result: Result, *, verbose: bool, quiet: bool) -> int:
    """Say what ``pip()`` left unsaid; return the exit code (1: a requirement cannot be met).

    The progress display has already printed the one-line summary, so only ``-v`` adds the
    per-package lines below it (``repr(result)`` without its first line, the summary). An
    unsatisfiable dry run raises nothing (the plan is its answer) but must still fail.
    """
    if verbose and not quiet and result.installed:
        _say("\n".join(repr(result).splitlines()[1:]))
    if not result.ok:
        for problem in result.plan.unsatisfiable:
            _complain(f"cannot install {problem.text}: {problem.reason}")
        return 1
    return 0


def _run(options: argparse.Namespace) -> int:
    from . import api

    if options.command == "config":
        from .connections import system_proxies
        from .proxies import describe_proxies

        settings = api.config(options.profile)
        _say(settings.describe())
        _say(describe_proxies(system_proxies()))
        notice = no_repository(settings)
        if notice:
            _say(notice)
        return 0
    requirements = _read_files(options.requirements, options.requirement)
    if requirements is None:
        _complain("a requirements file holds pip options; use pip for it")
        return 2
    if not requirements:
        _complain("no requirements given (usage: python -m ipydeps install NAME ...)")
        return 2
    if options.verbose:
        _show_decisions()
    result = api.pip(
        requirements,
        dry_run=options.dry_run or options.command == "plan",
        upgrade=options.upgrade,
        quiet=options.quiet,
        config=options.profile,
        upstream=options.upstream,
        index_url=options.index_url,
        prefix=options.prefix,
    )
    return _report(result, verbose=options.verbose, quiet=options.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 IpydepsError, 2 usage)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        if words[:1] == ["pip"]:
            return pip_command(words[1:])
        try:
            options = _parser().parse_args(words)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        return _run(options)
    except IpydepsError as error:
        _complain(str(error))
        return 1
    except KeyboardInterrupt as interrupt:
        # Its notes say what stayed when it came late (a commit finished first, apks added).
        notes = [note.removeprefix("ipydeps: ") for note in getattr(interrupt, "__notes__", ())]
        _complain("interrupted; " + ("; ".join(notes) if notes else "nothing was installed"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
