"""A wheel's scripts: entry points, the console-script template and shebangs.

Every path that writes a wheel's scripts (the client's installers, the apk wrapper) takes
them from here, so a tool installed by ipydeps and the same tool wrapped in an apk are the
same file but for the interpreter's path. The template and the shebang rule are
pypa/installer's (``installer.scripts``), which pip's vendored installer shares.
"""

from __future__ import annotations

import configparser
import re
import shlex
from typing import Literal, NamedTuple

__all__ = [
    "EntryPoint",
    "console_script",
    "parse_entry_points",
    "rewrite_shebang",
    "shebang",
]

# ``module:attr.path [extras]``: the entry point specification ("Entry points data model").
_ENTRY_POINT = re.compile(r"(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(?:\[.*\])?")
# Script names become file names in a scripts directory: letters, digits and ._+- only.
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_TEMPLATE = """\
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""
# Linux reads at most 127 bytes of a "#!" line on older kernels (BINPRM_BUF_SIZE 128).
_MAX_SHEBANG = 127


class EntryPoint(NamedTuple):
    """One console or GUI script a wheel's ``entry_points.txt`` asks for."""

    name: str
    module: str
    attr: str
    section: Literal["console", "gui"]


def parse_entry_points(text: str) -> tuple[list[EntryPoint], list[str]]:
    """Return the scripts of ``entry_points.txt`` and every problem with them.

    Only ``[console_scripts]`` and ``[gui_scripts]`` make scripts. A value must be
    ``module:attr`` (extras allowed, ignored); a name must be a plain file name.
    """
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as error:
        return [], [f"entry_points.txt is invalid: {error}"]
    found: list[EntryPoint] = []
    problems: list[str] = []
    for section, kind in (("console_scripts", "console"), ("gui_scripts", "gui")):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            match = _ENTRY_POINT.fullmatch(value.strip())
            if match is None or not _SCRIPT_NAME.fullmatch(name):
                problems.append(f"entry point {name!r} = {value!r} is invalid")
                continue
            found.append(
                EntryPoint(
                    name, match["module"], match["attr"], "console" if kind == "console" else "gui"
                )
            )
    return found, problems


def shebang(python: str) -> bytes:
    """Return the ``#!`` line (newline included) that runs a script with ``python``.

    A path with a space, or too long for the kernel, goes through ``/bin/sh`` instead
    (the ``'''exec'`` trick: a line sh runs and Python reads as a string).
    """
    if " " not in python and len(python.encode()) + 3 <= _MAX_SHEBANG:
        return f"#!{python}\n".encode()
    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n".encode()


def rewrite_shebang(data: bytes, python: str) -> bytes:
    """Return a ``.data/scripts`` file with a ``#!python`` first line pointing at ``python``.

    The wheel spec marks scripts to rewrite with a first line starting ``#!python``
    (``#!pythonw`` too); any other file is returned as it is.
    """
    if not data.startswith(b"#!python"):
        return data
    _, _, rest = data.partition(b"\n")
    return shebang(python) + rest


def console_script(entry: EntryPoint, python: str) -> bytes:
    """Return the script that runs ``entry`` with ``python``."""
    body = _TEMPLATE.format(module=entry.module, name=entry.attr.split(".", 1)[0], call=entry.attr)
    return shebang(python) + body.encode("utf-8")
