"""``python -m ipydeps install|plan|config|pip``: the terminal edge of ``ipydeps.pip()``.

Exit codes: 0 ok, 1 an ``IpydepsError`` (its message, no traceback), 2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .errors import IpydepsError
from .pipargs import parse_install, read_requirement_file


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ipydeps",
                                     description="Install prebuilt packages from the repository.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("install", "install requirements (prebuilt only)"),
                       ("plan", "print the plan and change nothing")):
        command = commands.add_parser(name, help=text)
        command.add_argument("requirements", nargs="*", metavar="REQUIREMENT")
        command.add_argument("-r", "--requirement", action="append", default=[],
                             metavar="FILE", help="read requirements from FILE")
        command.add_argument("-U", "--upgrade", action="store_true")
        command.add_argument("-q", "--quiet", action="store_true")
        command.add_argument("-v", "--verbose", action="store_true")
        command.add_argument("--dry-run", action="store_true")
        command.add_argument("-i", "--index-url", help="repository URL (overrides config)")
        command.add_argument("--profile", help="configuration profile")
        command.add_argument("--upstream", choices=("allow", "deny"))
        command.add_argument("--prefix", help="install into this environment (default: this one)")
    config = commands.add_parser("config", help="show the effective configuration")
    config.add_argument("--profile", help="configuration profile")
    return parser


def pip_command(args: list[str]) -> int:
    """``python -m ipydeps pip ARGS``: the pip shim's entry (docker/pip-shim).

    ``install`` command lines ipydeps understands are carried out by ``ipydeps.pip()``;
    anything else replaces this process with the real pip, arguments unchanged.
    """
    install = parse_install(args)
    requirements = list(install.requirements) if install else []
    for path in install.requirement_files if install else ():
        lines = read_requirement_file(path)
        if lines is None:
            install = None
            break
        requirements += lines
    if install is None:
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, "-m", "pip", *args])
    from . import api

    result = api.pip(requirements, upgrade=install.upgrade, quiet=install.quiet,
                     verbose=install.verbose, dry_run=install.dry_run,
                     index_url=install.index_url)
    if not install.quiet and result.installed:
        print(repr(result))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["pip"]:
        try:
            return pip_command(words[1:])
        except IpydepsError as error:
            print(f"ipydeps: {error}", file=sys.stderr)
            return 1
    parser = _parser()
    try:
        options = parser.parse_args(words)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from . import api

    try:
        if options.command == "config":
            print(api.config(options.profile).describe())
            return 0
        requirements = list(options.requirements)
        for path in options.requirement:
            lines = read_requirement_file(path)
            if lines is None:
                print(f"ipydeps: {path} holds pip options; use pip for it", file=sys.stderr)
                return 2
            requirements += lines
        if not requirements:
            parser.print_usage(sys.stderr)
            print("ipydeps: no requirements given", file=sys.stderr)
            return 2
        result = api.pip(requirements, dry_run=options.dry_run or options.command == "plan",
                         upgrade=options.upgrade, quiet=options.quiet, verbose=options.verbose,
                         config=options.profile, upstream=options.upstream,
                         index_url=options.index_url, prefix=options.prefix)
    except IpydepsError as error:
        print(f"ipydeps: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ipydeps: interrupted; nothing was installed", file=sys.stderr)
        return 1
    if not options.quiet and result.installed:
        print(repr(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
