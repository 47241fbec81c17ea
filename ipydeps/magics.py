"""IPython extension: ``%pip install`` and ``!pip install`` go through ``ipydeps.pip()``.

``%load_ext ipydeps`` registers a ``%pip`` line magic and an input transformer that
rewrites ``!pip install ...`` (also ``!pip3``, ``!python -m pip``) into ``%pip install ...``.
Anything ipydeps does not handle (other subcommands, unknown options) runs the real
pip of the kernel's interpreter, as an argument list; with upstream off (air-gapped), that
pip is sealed to our repository, or the command refused (see handoff.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import PipFailedError
from .pipargs import parse_install, read_requirement_file, refuse_own_options, split_command

if TYPE_CHECKING:
    from .handoff import Handoff

# `!pip install`, `!pip3 install`, `!python -m pip install`, `!python3.11 -m pip install`.
_SHELL_PIP = re.compile(
    r"^(?P<indent>\s*)!\s*(?:pip3?(?:\.\d+)?|python(?:3(?:\.\d+)?)?\s+-m\s+pip)"
    r"(?P<rest>\s+install\b.*)$"
)


def rewrite_shell_pip(lines: list[str]) -> list[str]:
    """Input transformer: turn ``!pip install ...`` lines into ``%pip install ...``.

    Only whole statements are rewritten (not ``x = !pip ...``), and not line
    continuations, so the meaning of every other line is unchanged.
    """
    rewritten = []
    for line in lines:
        match = _SHELL_PIP.match(line.rstrip("\n"))
        if match is None or line.rstrip().endswith("\\"):
            rewritten.append(line)
            continue
        ending = "\n" if line.endswith("\n") else ""
        rewritten.append(f"{match.group('indent')}%pip{match.group('rest')}{ending}")
    return rewritten


def run_real_pip(args: list[str], environ: Mapping[str, str] | None = None) -> int:
    """Run the kernel interpreter's own pip with ``args`` (in ``environ``, default ours).

    Streams its output; returns its exit code.
    """
    process = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        check=False,
        env=None if environ is None else dict(environ),
    )
    sys.stdout.write(process.stdout)
    sys.stderr.write(process.stderr)
    return process.returncode


def pip_magic(line: str) -> None:
    """Run ``%pip``: ``install`` through ipydeps, everything else to the real pip.

    A failed install fails the cell, as a failing line of Python does, so "Run All" stops
    there rather than run the cells that need the package: an ``IpydepsError`` propagates
    (IPython shows its message alone, ``IpydepsError._render_traceback_``), and an install
    handed to the real pip that exits non-zero raises ``PipFailedError``. A non-install
    command of the real pip (``list``, ``show``, ...) that fails only prints pip's output.
    """
    args = split_command(line)
    install = parse_install(args)
    requirements = list(install.requirements) if install else []
    if install is not None:
        for path in install.requirement_files:
            lines = read_requirement_file(path)
            if lines is None:
                install = None
                break
            requirements += lines
    if install is None:
        handoff = hand_off(args)
        if handoff.notice:
            sys.stderr.write(handoff.notice + "\n")
        code = run_real_pip(list(handoff.args), handoff.environ)
        if code != 0 and args[:1] == ["install"]:
            raise PipFailedError(args, code)
        return
    from .api import pip

    pip(
        requirements,
        upgrade=install.upgrade,
        quiet=install.quiet,
        verbose=install.verbose,
        dry_run=install.dry_run,
        index_url=install.index_url,
        request_build=install.request_build,
    )


def hand_off(args: list[str]) -> Handoff:
    """Return how the real pip runs ``args`` under this process's configuration.

    Raises ``OwnOptionError`` (``--request-build``: the real pip does not know it),
    ``AirGapError`` (upstream off, another source named) or ``ConfigError``.
    """
    refuse_own_options(args)
    from .handoff import plan_handoff
    from .settings import load_config

    return plan_handoff(args, settings=load_config(environ=os.environ), environ=os.environ)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%pip`` and the ``!pip install`` transformer (``%load_ext ipydeps``).

    The install machinery (``ipydeps.api``) is loaded here too: the runtime loads the
    extension at kernel start, so the first ``%pip install`` does not wait for it.
    """
    from . import api  # noqa: F401
    from .restore import start_restore

    # A kernel started for a notebook with a lock file installs it now (restore.py).
    start_restore(ipython)
    ipython.register_magic_function(pip_magic, magic_kind="line", magic_name="pip")
    cleanup = ipython.input_transformers_cleanup
    if rewrite_shell_pip not in cleanup:
        cleanup.append(rewrite_shell_pip)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the transformer (``%unload_ext ipydeps``); IPython's own %pip is not restored."""
    cleanup = ipython.input_transformers_cleanup
    if rewrite_shell_pip in cleanup:
        cleanup.remove(rewrite_shell_pip)
