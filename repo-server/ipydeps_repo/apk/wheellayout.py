"""Lay a wheel out as installed files under / (like pypa/installer), with RECORD rewritten.

The wheel's rules (where a ``.data`` member goes, entry points and the console-script
template, ``#!python``, RECORD) are ``ipydeps.formats``', as the client installs them.
"""

from __future__ import annotations

import posixpath

from ipydeps.formats.records import UNHASHED_NAMES, record_hash_of, render_record
from ipydeps.formats.scripts import console_script, parse_entry_points, rewrite_shebang
from ipydeps.formats.wheel import member_category

from ..errors import ValidationError
from .package import ApkEntry
from .wheelfile import WheelContents

# The installer name pip shows and keeps away from (PEP 376 INSTALLER).
INSTALLER = b"apk\n"
# Signatures over the original RECORD are void once RECORD is rewritten.
_DROPPED = (*UNHASHED_NAMES, "INSTALLER")


def _destination(wheel: WheelContents, name: str, site: str, python: str) -> str | None:
    """Return the installed path of a wheel member (None for files to drop)."""
    if name.startswith(wheel.dist_info + "/") and name.split("/", 1)[1] in _DROPPED:
        return None
    placed = member_category(name, wheel.data_dir, "purelib")
    if isinstance(placed, str):
        raise ValidationError(wheel.filename, [placed])
    category, relative = placed
    targets = {
        "purelib": site,
        "platlib": site,
        "scripts": "usr/bin",
        "headers": f"usr/include/python{python}/{wheel.name}",
        "data": "usr",
    }
    return f"{targets[category]}/{relative.as_posix()}"


def _entry_point_scripts(wheel: WheelContents, python: str) -> dict[str, bytes]:
    text = wheel.files.get(f"{wheel.dist_info}/entry_points.txt")
    if text is None:
        return {}
    try:
        entries, problems = parse_entry_points(text.decode("utf-8"))
    except UnicodeDecodeError as error:
        problems = [f"entry_points.txt is invalid: {error}"]
    if problems:
        raise ValidationError(wheel.filename, problems)
    return {entry.name: console_script(entry, f"/usr/bin/python{python}") for entry in entries}


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
            data = rewrite_shebang(data, f"/usr/bin/python{python}")
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
        (_record_name(path, site), record_hash_of(data), str(len(data)))
        for path, data in sorted(placed.items())
    ]
    placed[record_path] = render_record(rows, _record_name(record_path, site))
    return [
        ApkEntry.file(path, data, mode=0o755 if path in executable else 0o644)
        for path, data in sorted(placed.items())
    ]


def _record_name(path: str, site: str) -> str:
    """Return an installed path as RECORD names it: relative to site-packages."""
    return posixpath.relpath("/" + path, "/" + site)
