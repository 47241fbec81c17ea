"""``python -m ipydeps install|plan|config|pip``: the terminal edge of ``ipydeps.pip()``.

Exit codes: 0 ok, 1 an ``IpydepsError`` (its message, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, get_args

from .advice import Wording, command_flags, pip_flags
from .errors import AdvisedError, IpydepsError
from .notices import no_repository
from .pipargs import parse_install, read_requirement_file
from .render import render_text
from .settings_values import DEFAULTS, UpstreamPolicy

if TYPE_CHECKING:
    from .plan_model import Plan
    from .result import Result


_PROFILE_HELP = (
    "use the [profiles.NAME] table of the configuration files (default: $IPYDEPS_CONFIG, else none)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ipydeps", description="Install prebuilt packages from the repository."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("install", "install requirements (prebuilt only)"),
        ("plan", "print the plan and change nothing"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        _add_plan_arguments(command)
        if name == "plan":
            # A plan never installs: --dry-run would mean nothing, so it is refused by name.
            command.add_argument(
                "--dry-run", action=_RefusedDryRun, nargs=0, default=True, help=argparse.SUPPRESS
            )
        else:
            command.add_argument(
                "--dry-run",
                action="store_true",
                help="print the plan and change nothing (the same as 'plan')",
            )
    config = commands.add_parser("config", help="show the effective configuration")
    config.add_argument(
        "--profile",
        metavar="NAME",
        help=_PROFILE_HELP,
    )
    # Handled before parsing (main), so pip's own options pass through untouched; listed
    # here so that --help names it.
    commands.add_parser(
        "pip",
        help="pip's command line: 'install' through ipydeps, "
        "anything else runs the real pip (the pip shim's entry)",
        add_help=False,
    )
    return parser


class _RefusedDryRun(argparse.Action):
    """``plan --dry-run``: a usage error that says why, rather than argparse's bare refusal."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "plan never changes anything, so it takes no --dry-run "
            "(use 'plan ...', or 'install --dry-run ...')"
        )


def _add_plan_arguments(command: argparse.ArgumentParser) -> None:
    """Add the options ``install`` and ``plan`` share, each saying what it does and its default."""
    command.add_argument(
        "requirements",
        nargs="*",
        metavar="REQUIREMENT",
        help="a PEP 508 requirement, e.g. 'numpy>=2'",
    )
    command.add_argument(
        "-r",
        "--requirement",
        action="append",
        default=[],
        metavar="FILE",
        help="read requirements from FILE (repeatable)",
    )
    command.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="take the newest version of each requirement even when one is installed "
        "(default: keep what is installed when it fits)",
    )
    command.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print no plan and no progress, only errors (default: print both)",
    )
    command.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="list each package installed, and print why each "
        "source was chosen, retries and timings (default: off)",
    )
    command.add_argument(
        "-i",
        "--index-url",
        metavar="URL",
        help="repository URL (default: $IPYDEPS_REPOSITORY_URL or the configuration "
        "files' repository_url)",
    )
    command.add_argument(
        "--profile",
        metavar="NAME",
        help=_PROFILE_HELP,
    )
    command.add_argument(
        "--upstream",
        choices=get_args(UpstreamPolicy),
        help="whether packages may come from the upstream index when the repository "
        f"lacks them (default: $IPYDEPS_UPSTREAM or the configuration files, else "
        f"{DEFAULTS['upstream']}; 'python -m ipydeps config' shows the value in force)",
    )
    command.add_argument(
        "--prefix", metavar="DIR", help="install into this environment (default: this one)"
    )
    command.add_argument(
        "--request-build",
        action="store_true",
        help="ask our repository's farm to build each requirement that has no prebuilt "
        "build for this platform; the plan then says the request is queued (needs "
        "repository_token with the 'request' right; default: off, the plan only says "
        "where a request stands)",
    )


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
        request_build=install.request_build,
        show_plan=_plan_shower(quiet=install.quiet, wording=pip_flags),
    )
    return _report(result, verbose=install.verbose, quiet=install.quiet, wording=pip_flags)


def _show_decisions() -> None:
    """``-v``: print the ``ipydeps`` logger's trail on stderr.

    Each source chosen and why, retries, fallbacks from a stored copy to the wheel, timings.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ipydeps: %(message)s"))
    logger = logging.getLogger("ipydeps")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def _plan_shower(*, quiet: bool, wording: Wording = command_flags) -> Callable[[Plan], None]:
    """Return how the command shows a plan: on stdout, hints in the command's flags.

    What cannot be installed is left out: it is the command's error, said once on stderr
    (by ``_report`` for a plan, by the raised error for an install).
    """

    def show(plan: Plan) -> None:
        text = render_text(plan, wording=wording, problems=False)
        if text and not quiet:
            _say(text)

    return show


def _report(result: Result, *, verbose: bool, quiet: bool, wording: Wording = command_flags) -> int:
    """Say what ``pip()`` left unsaid; return the exit code (1: a requirement cannot be met).

    The progress display has already printed the one-line summary, so only ``-v`` adds the
    per-package lines below it. An unsatisfiable plan (a dry run) raises nothing, the plan
    is its answer, but must still fail: each problem is said here, once, on stderr.
    """
    if verbose and not quiet and result.installed:
        _say("\n".join(result.installed_lines()))
    if not result.ok:
        for problem in result.plan.unsatisfiable:
            hint = f"\n  hint: {problem.hint.worded(wording)}" if problem.hint else ""
            _complain(f"cannot install {problem.text}: {problem.reason}{hint}")
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
        dry_run=options.dry_run,
        upgrade=options.upgrade,
        quiet=options.quiet,
        config=options.profile,
        upstream=options.upstream,
        index_url=options.index_url,
        prefix=options.prefix,
        request_build=options.request_build,
        show_plan=_plan_shower(quiet=options.quiet),
    )
    return _report(result, verbose=options.verbose, quiet=options.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 IpydepsError, 2 usage)."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Hints name the settings as this command line takes them (advice.py).
    wording = pip_flags if words[:1] == ["pip"] else command_flags
    try:
        if words[:1] == ["pip"]:
            return pip_command(words[1:])
        try:
            options = _parser().parse_args(words)
        except SystemExit as exit_:
            return int(exit_.code or 0)
        return _run(options)
    except AdvisedError as error:
        _complain(error.describe(wording))
        return 1
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
