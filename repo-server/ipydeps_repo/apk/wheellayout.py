"""Lay a wheel out as installed files under / (like pypa/installer), with RECORD rewritten."""

from __future__ import annotations

import configparser
import posixpath
import re

from ..errors import ValidationError
from ..validation.wheel_archive import record_hash
from .package import ApkEntry
from .wheelfile import WheelContents

# The installer name pip shows and keeps away from (PEP 376 INSTALLER).
INSTALLER = b"apk\n"
# Signatures over the original RECORD are void once RECORD is rewritten.
_DROPPED = ("RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER")
_ENTRY_POINT = re.compile(r"(?P<module>[\w.]+)\s*:\s*(?P<attr>[\w.]+)\s*(\[.*\])?")
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
# pypa/installer's console-script template, with the interpreter fixed for the target.
_SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from {module} import {name}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({call}())
"""


def _destination(wheel: WheelContents, name: str, site: str, python: str) -> str | None:
    """Return the installed path of a wheel member (None for files to drop)."""
    if name.startswith(wheel.dist_info + "/") and name.split("/", 1)[1] in _DROPPED:
        return None
    if not name.startswith(wheel.data_dir + "/"):
        return f"{site}/{name}"
    scheme, _, rest = name[len(wheel.data_dir) + 1 :].partition("/")
    targets = {
        "purelib": site,
        "platlib": site,
        "scripts": "usr/bin",
        "headers": f"usr/include/python{python}/{wheel.name}",
        "data": "usr",
    }
    if scheme not in targets or not rest:
        raise ValidationError(wheel.filename, [f"{name!r}: unknown .data scheme {scheme!r}"])
    return f"{targets[scheme]}/{rest}"


def _script(data: bytes, python: str) -> bytes:
    # Wheels mark scripts to be rewritten with "#!python" (PEP 427 "spread" step).
    first, newline, rest = data.partition(b"\n")
    if first.startswith((b"#!python", b"#!pythonw")):
        return f"#!/usr/bin/python{python}".encode() + newline + rest
    return data


def _entry_point_scripts(wheel: WheelContents, python: str) -> dict[str, bytes]:
    text = wheel.files.get(f"{wheel.dist_info}/entry_points.txt")
    if text is None:
        return {}
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text.decode("utf-8"))
    except (configparser.Error, UnicodeDecodeError) as error:
        raise ValidationError(wheel.filename, [f"entry_points.txt is invalid: {error}"]) from None
    scripts: dict[str, bytes] = {}
    problems: list[str] = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for script, value in parser.items(section):
            match = _ENTRY_POINT.fullmatch(value.strip())
            if match is None or not _SCRIPT_NAME.fullmatch(script):
                problems.append(f"entry point {script!r} = {value!r} is invalid")
                continue
            attr = match["attr"]
            scripts[script] = _SCRIPT.format(
                python=f"/usr/bin/python{python}",
                module=match["module"],
                name=attr.split(".")[0],
                call=attr,
            ).encode()
    if problems:
        raise ValidationError(wheel.filename, problems)
    return scripts


def installed_files(wheel: WheelContents, python: str) -> list[ApkEntry]:
    """Return the wheel's files as installed into ``/usr`` for CPython ``python``.

    Root and purelib/platlib files go to site-packages, ``.data/scripts`` and console
    scripts to usr/bin, headers to usr/include/pythonX.Y/<name>, data to usr. The
    .dist-info is kept, with INSTALLER ``apk`` and a RECORD listing every installed file
    (paths relative to site-packages) so pip and importlib.metadata see the package.

    Raises:
        ValidationError: for unknown .data schemes, invalid entry points, or two files
            installed to the same path.
    """
    site = f"usr/lib/python{python}/site-packages"
    placed: dict[str, bytes] = {}
    executable: set[str] = set()
    problems: list[str] = []
    for name, data in sorted(wheel.files.items()):
        destination = _destination(wheel, name, site, python)
        if destination is None:
            continue
        if destination.startswith("usr/bin/"):
            data = _script(data, python)
            executable.add(destination)
        if destination in placed:
            problems.append(f"{name!r} and another file both install to /{destination}")
        placed[destination] = data
    for script, data in _entry_point_scripts(wheel, python).items():
        destination = f"usr/bin/{script}"
        if destination in placed:
            problems.append(f"console script {script!r} clashes with a file in .data/scripts")
        placed[destination] = data
        executable.add(destination)
    if problems:
        raise ValidationError(wheel.filename, problems)
    placed[f"{site}/{wheel.dist_info}/INSTALLER"] = INSTALLER
    record_path = f"{site}/{wheel.dist_info}/RECORD"
    rows = [
        f"{_record_name(path, site)},{record_hash(data)},{len(data)}\n"
        for path, data in sorted(placed.items())
    ]
    rows.append(f"{_record_name(record_path, site)},,\n")
    placed[record_path] = "".join(rows).encode()
    return [
        ApkEntry.file(path, data, mode=0o755 if path in executable else 0o644)
        for path, data in sorted(placed.items())
    ]


def _record_name(path: str, site: str) -> str:
    name = posixpath.relpath("/" + path, "/" + site)
    # RECORD is CSV: quote paths holding a comma or quote (PEP 376).
    return f'"{name.replace(chr(34), chr(34) * 2)}"' if ("," in name or '"' in name) else name
