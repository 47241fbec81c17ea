"""Read a pip command line: which ``pip install`` invocations ipydeps can take over, and how."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
}
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
        index_url=index_url if isinstance(index_url := values.get("index_url"), str) else None,
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
