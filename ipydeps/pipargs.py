"""Read a pip command line: which ``pip install`` invocations ipydeps can take over, and how."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .credentials import redact
from .errors import IpydepsError

# pip install options ipydeps understands; anything else goes to the real pip unchanged.
_FLAGS = {
    "-U": "upgrade",
    "--upgrade": "upgrade",
    "-q": "quiet",
    "--quiet": "quiet",
    "--dry-run": "dry_run",
    "-v": "verbose",
    "--verbose": "verbose",
    "--request-build": "request_build",  # ipydeps' own: the real pip never sees it
}
# Options only ipydeps takes: a command handed to the real pip must not carry them.
OWN_OPTIONS = ("--request-build",)
_VALUED = {
    "-i": "index_url",
    "--index-url": "index_url",
    "-r": "requirement",
    "--requirement": "requirement",
}


@dataclass(frozen=True)
class InstallArgs:
    """A ``pip install`` command line that ipydeps can carry out itself."""

    requirements: tuple[str, ...]
    upgrade: bool = False
    quiet: bool = False
    verbose: bool = False
    dry_run: bool = False
    request_build: bool = False  # ask our repository's farm for each missing build
    index_url: str | None = None
    requirement_files: tuple[str, ...] = field(default=())


def split_command(line: str) -> list[str]:
    """Split a magic's line like a POSIX shell would, without running one.

    Raises ``IpydepsError`` for unbalanced quotes.
    """
    try:
        return shlex.split(line, comments=True)
    except ValueError as error:
        raise IpydepsError(f"Cannot read the command line {line!r}: {error}") from None


def _option_value(word: str, words: Iterator[str]) -> tuple[str | None, str | None]:
    """Return (setting, value) of a valued option (``-r F``, ``-rF``, ``--index-url=U``)."""
    option, has_value, inline = word.partition("=")
    if word in _VALUED:
        return _VALUED[word], next(words, None)
    if option.startswith("--") and option in _VALUED and has_value:
        return _VALUED[option], inline
    if word[:2] in ("-i", "-r") and len(word) > 2:
        return _VALUED[word[:2]], word[2:]
    return None, None


def parse_install(args: list[str]) -> InstallArgs | None:
    """Parse the words after ``pip``; None when the real pip must handle them.

    Returns None for subcommands other than ``install`` and for install options ipydeps
    does not understand (``-e``, ``--user``, ``--target``, ``--no-deps`` ...).
    """
    if not args or args[0] != "install":
        return None
    values: dict[str, object] = {}
    requirements: list[str] = []
    files: list[str] = []
    words = iter(args[1:])
    for word in words:
        if word in _FLAGS:
            values[_FLAGS[word]] = True
            continue
        if not word.startswith("-"):
            requirements.append(word)
            continue
        key, value = _option_value(word, words)
        if key is None or not value:
            return None
        if key == "requirement":
            files.append(value)
        else:
            values[key] = value
    if not requirements and not files:
        return None
    return InstallArgs(
        requirements=tuple(requirements),
        requirement_files=tuple(files),
        upgrade=bool(values.get("upgrade")),
        quiet=bool(values.get("quiet")),
        verbose=bool(values.get("verbose")),
        dry_run=bool(values.get("dry_run")),
        request_build=bool(values.get("request_build")),
        index_url=index_url if isinstance(index_url := values.get("index_url"), str) else None,
    )


class OwnOptionError(IpydepsError):
    """A command the real pip runs carries an option only ipydeps takes."""


def refuse_own_options(args: list[str]) -> None:
    """Raise ``OwnOptionError`` when ``args``, bound for the real pip, hold ipydeps' options.

    ``pip install --request-build --no-deps x`` cannot be carried out by ipydeps (it does
    not take ``--no-deps``), and the real pip does not know ``--request-build``: running
    it without the option would drop the build request unsaid, so nothing runs.
    """
    own = [word for word in args if word in OWN_OPTIONS]
    if not own:
        return
    command = redact(shlex.join(["pip", *args]))  # an index URL may carry a token
    raise OwnOptionError(
        f"Refused `{command}`: {', '.join(dict.fromkeys(own))} is ipydeps' own option, but "
        "this command runs the real pip (it has a subcommand, an option or a requirements "
        "file line ipydeps does not take), which does not know it; nothing was run",
        hint="ask for the build on its own (pip install --request-build NAME, or "
        "ipydeps.request_build('NAME')), then run this command without --request-build",
    )


def read_requirement_file(path: str | Path) -> list[str] | None:
    """Return the requirement lines of a requirements file, or None if it holds pip options.

    Blank lines and comments are dropped. Options (``-e``, ``--hash``, ``-c`` ...) make
    the file one for the real pip, so None is returned. Raises ``IpydepsError`` when
    the file cannot be read.
    """
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise IpydepsError(f"Cannot read requirements file {path}: {error.strerror}") from None
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-") or line.endswith("\\"):
            return None
        lines.append(line)
    return lines
