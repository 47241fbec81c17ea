"""Unpack a verified wheel into a staging directory beside its final place, in parallel threads.

Follows the binary distribution format spec (PEP 427 / PEP 491): ``.data`` categories,
``#!python`` shebang rewriting, console-script entry points, RECORD rewritten with
installed paths and ``INSTALLER = ipydeps``. Staging lives inside each target
directory so that committing is a handful of ``rename`` calls (see transaction.py).
"""

from __future__ import annotations

import configparser
import csv
import hashlib
import io
import os
import re
import threading
import zipfile
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath

from packaging.utils import NormalizedName, canonicalize_name

from ..environment import InstallScheme
from ..formats.wheel import is_unsafe_path
from .journal import is_reserved_name
from .members import (
    InvalidWheelError as InvalidWheelError,  # raised here too; importers know it from here
)
from .members import (
    RecordMismatchError as RecordMismatchError,
)
from .members import (
    _Entry,
    _expected_hash,
    _extract_all,
    check_record_hash,
    read_member,
    record_hash,
)

INSTALLER_NAME = "ipydeps"


_CATEGORIES = ("purelib", "platlib", "scripts", "data", "headers")
_ENTRY_POINT = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attrs>[\w.]+))?\s*(\[.*\])?\s*")


@dataclass
class StagedWheel:
    """A wheel unpacked into staging directories, ready to be renamed into place."""

    name: NormalizedName
    version: str
    dist_info: str  # e.g. "numpy-2.3.5.dist-info"
    lib_category: str  # "purelib" or "platlib": where the .dist-info goes
    staging: dict[str, Path]  # category -> this wheel's staging dir for it
    targets: dict[str, Path]  # category -> final directory
    # Staging dir -> the existing directory it is committed into. A target that does not
    # exist yet (e.g. include/site/python3.X/<name>) is staged below its nearest existing
    # ancestor, so a rollback leaves no new empty directories behind.
    anchors: dict[Path, Path] = field(default_factory=dict)
    files: int = 0
    bytes_written: int = 0
    top_level: tuple[str, ...] = ()  # importable top-level names, for restart warnings
    pth_files: tuple[str, ...] = ()
    ships_bytecode: bool = False
    # Name of this wheel's directory inside the staging dirs (default: the .dist-info stem).
    stage_key: str = ""


@dataclass
class _Layout:
    entries: list[_Entry] = field(default_factory=list)
    record: list[tuple[str, str, str]] = field(default_factory=list)  # installed path, hash, size
    scripts: list[tuple[zipfile.ZipInfo, Path, str]] = field(default_factory=list)


def stage_wheel(
    wheel: Path,
    scheme: InstallScheme,
    staging_name: str,
    *,
    executor: Executor,
    cancel: threading.Event,
) -> StagedWheel:
    """Unpack ``wheel`` (already hash-verified) into ``<target>/<staging_name>/`` dirs.

    Entries are decompressed and written by ``executor``'s threads (zlib and file
    writes release the GIL). Raises ``InvalidWheelError`` for a wheel that breaks
    the spec; nothing outside the staging directories is touched.
    """
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        dist_info, name, version = _find_dist_info(wheel, infos)
        wheel_meta = BytesHeaderParser().parsebytes(
            read_member(archive, f"{dist_info}/WHEEL", wheel.name))
        if not str(wheel_meta.get("Wheel-Version", "")).startswith("1."):
            raise InvalidWheelError(f"{wheel.name}: unsupported Wheel-Version "
                                    f"{wheel_meta.get('Wheel-Version')!r}")
        lib = "purelib" if str(wheel_meta.get("Root-Is-Purelib", "")).lower() == "true" \
            else "platlib"
        targets = scheme.roots()
        targets["headers"] = scheme.headers / name
        staged = StagedWheel(name=name, version=version, dist_info=dist_info, lib_category=lib,
                             staging={}, targets=targets)
        layout = _plan_layout(wheel, archive, infos, staged, staging_name)
        _make_directories(entry.destination.parent for entry in layout.entries)
        _extract_all(wheel, layout.entries, executor, cancel)
        layout.record += [(entry.installed, entry.written, str(entry.info.file_size))
                          for entry in layout.entries]
        shipped = []
        for info, destination, expected in layout.scripts:
            data = read_member(archive, info.filename, wheel.name)
            check_record_hash(wheel.name, info.filename, expected, data)
            shipped.append((data, destination))
        entry_points = f"{dist_info}/entry_points.txt"
        _write_scripts(
            shipped,
            read_member(archive, entry_points, wheel.name).decode()
            if entry_points in archive.namelist() else None,
            layout, staged, scheme, staging_name)
        _write_metadata(layout, staged, staging_name)
    staged.files = len(layout.record)
    staged.bytes_written = sum(entry.info.file_size for entry in layout.entries)
    return staged


def _find_dist_info(wheel: Path, infos: list[zipfile.ZipInfo]) -> tuple[str, NormalizedName, str]:
    dist_infos = {info.filename.split("/", 1)[0] for info in infos
                  if info.filename.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise InvalidWheelError(f"{wheel.name}: expected one .dist-info directory, "
                                f"found {sorted(dist_infos) or 'none'}")
    dist_info = dist_infos.pop()
    project, _, version = dist_info[: -len(".dist-info")].partition("-")
    expected = canonicalize_name(wheel.name.split("-", 1)[0])
    if canonicalize_name(project) != expected or not version:
        raise InvalidWheelError(f"{wheel.name}: its metadata directory {dist_info!r} names "
                                "another project")
    return dist_info, expected, version


def _category_root(staged: StagedWheel, category: str, staging_name: str) -> Path:
    root = staged.staging.get(category)
    if root is None:
        target = staged.targets[category]
        anchor = target
        while not anchor.is_dir() and anchor.parent != anchor:
            anchor = anchor.parent
        key = staged.stage_key or staged.dist_info.removesuffix(".dist-info")
        stage_dir = anchor / staging_name / key
        staged.anchors[stage_dir] = anchor
        root = stage_dir / target.relative_to(anchor)
        staged.staging[category] = root
        root.mkdir(parents=True, exist_ok=True)
    return root


def _plan_layout(wheel: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo],
                 staged: StagedWheel, staging_name: str) -> _Layout:
    layout = _Layout()
    try:
        record_text = read_member(archive, f"{staged.dist_info}/RECORD", wheel.name)
    except KeyError:
        raise InvalidWheelError(f"Refused {wheel.name}: it has no {staged.dist_info}/RECORD",
                                hint="the wheel is malformed; tell its publisher") from None
    hashes = record_hashes(record_text.decode("utf-8", "replace"))
    seen: set[str] = set()
    data_dir = staged.dist_info.removesuffix(".dist-info") + ".data"
    problems: list[str] = []
    top_level: set[str] = set()
    pth: list[str] = []
    skip = {f"{staged.dist_info}/RECORD", f"{staged.dist_info}/RECORD.jws",
            f"{staged.dist_info}/RECORD.p7s"}
    for info in infos:
        name = info.filename
        if name in seen:
            problems.append(f"{name!r} is in the archive twice")
            continue
        seen.add(name)
        if info.is_dir() or name in skip:
            continue
        placed = _place(name, data_dir, staged.lib_category)
        if isinstance(placed, str):
            problems.append(placed)
            continue
        category, relative = placed
        staged.ships_bytecode = staged.ships_bytecode or name.endswith(".pyc")
        if category in ("purelib", "platlib"):
            _note_top_level(relative.parts[0], len(relative.parts) == 1, top_level, pth)
        expected = _expected_hash(name, info.file_size, hashes, problems)
        destination = _category_root(staged, category, staging_name) / relative
        if category == "scripts":
            layout.scripts.append((info, destination, expected))
            continue
        layout.entries.append(_Entry(info, destination, bool((info.external_attr >> 16) & 0o111),
                                     installed=_installed_path(staged, category, relative),
                                     expected=expected))
    if problems:
        raise InvalidWheelError(f"Refused {wheel.name}: " + "; ".join(problems),
                                hint="the wheel is malformed or hostile; tell its publisher")
    staged.top_level = tuple(sorted(name for name in top_level if name.isidentifier()))
    staged.pth_files = tuple(pth)
    return layout


def _place(name: str, data_dir: str, lib_category: str) -> tuple[str, PurePosixPath] | str:
    """Return (category, path inside it) for an archive member, or why it is refused."""
    if is_unsafe_path(name):
        return f"unsafe path {name!r}"
    if is_reserved_name(name):
        return f"{name!r} is named like ipydeps' own install journals"
    path = PurePosixPath(name)
    if path.parts[0] != data_dir:
        return lib_category, path
    if len(path.parts) < 3 or path.parts[1] not in _CATEGORIES:
        return f"unknown .data entry {name!r}"
    return path.parts[1], PurePosixPath(*path.parts[2:])


def _note_top_level(head: str, single: bool, top_level: set[str], pth: list[str]) -> None:
    """Collect importable top-level names and top-level .pth files of the lib directory.

    ``head`` is a lib member's first path component; ``single`` says it is the whole path.
    """
    if single and head.endswith(".pth"):
        pth.append(head)
    elif not head.endswith((".dist-info", ".data")):
        top_level.add(head.split(".", 1)[0] if single else head)


def _installed_path(staged: StagedWheel, category: str, relative: PurePosixPath) -> str:
    """Return the RECORD path: relative to the directory that holds the .dist-info (wheel spec)."""
    lib_root = staged.targets[staged.lib_category]
    final = staged.targets[category] / relative
    if category == staged.lib_category:
        return relative.as_posix()
    return Path(os.path.relpath(final, lib_root)).as_posix()


def record_hashes(text: str) -> dict[str, tuple[str, str]]:
    """Map each path of a wheel's RECORD text to its (hash, size) columns."""
    result: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 3 and row[1]:
            result[row[0]] = (row[1], row[2])
    return result


def _make_directories(parents: object) -> None:
    # Each directory is created once; sorting puts every parent before its children.
    for directory in sorted(set(parents)):  # type: ignore[call-overload]
        os.makedirs(directory, exist_ok=True)


def _record_hash(data: bytes) -> str:
    return record_hash(hashlib.sha256(data))


def _shebang(python: str) -> bytes:
    if " " in python or len(python) > 127:
        # The kernel's path cannot be a shebang: re-exec through sh (as distlib does).
        return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n".encode()
    return f"#!{python}\n".encode()


def _write_file(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(handle, data)
    finally:
        os.close(handle)


def _write_scripts(shipped: list[tuple[bytes, Path]], entry_points: str | None,
                   layout: _Layout, staged: StagedWheel, scheme: InstallScheme,
                   staging_name: str) -> None:
    """Write the wheel's own scripts (``#!python`` rewritten) and its entry-point scripts."""
    scripts: list[tuple[str, bytes]] = []
    for data, destination in shipped:
        if data.startswith(b"#!python"):
            first, _, rest = data.partition(b"\n")
            data = _shebang(scheme.python) + rest
        scripts.append((destination.name, data))
    if entry_points is not None:
        scripts += _entry_point_scripts(entry_points, scheme.python)
    if not scripts:
        return
    root = _category_root(staged, "scripts", staging_name)
    for name, data in scripts:
        if "/" in name or name in ("", ".", ".."):
            raise InvalidWheelError(f"unsafe script name {name!r}")
        _write_file(root / name, data, 0o755)
        installed = _installed_path(staged, "scripts", PurePosixPath(name))
        layout.record.append((installed, _record_hash(data), str(len(data))))


def _entry_point_scripts(text: str, python: str) -> list[tuple[str, bytes]]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    scripts: list[tuple[str, bytes]] = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            match = _ENTRY_POINT.fullmatch(value)
            if match is None or not match.group("attrs"):
                raise InvalidWheelError(f"bad entry point {name} = {value!r}")
            module, attrs = match.group("module"), match.group("attrs")
            head = attrs.split(".", 1)[0]
            body = (
                "# -*- coding: utf-8 -*-\n"
                "import re\nimport sys\n"
                f"from {module} import {head}\n"
                "if __name__ == '__main__':\n"
                "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                f"    sys.exit({attrs}())\n"
            )
            scripts.append((name, _shebang(python) + body.encode()))
    return scripts


def _write_metadata(layout: _Layout, staged: StagedWheel, staging_name: str) -> None:
    dist_dir = _category_root(staged, staged.lib_category, staging_name) / staged.dist_info
    installer = (INSTALLER_NAME + "\n").encode()
    _write_file(dist_dir / "INSTALLER", installer, 0o644)
    layout.record.append((f"{staged.dist_info}/INSTALLER", _record_hash(installer),
                          str(len(installer))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(layout.record)
    writer.writerow((f"{staged.dist_info}/RECORD", "", ""))
    _write_file(dist_dir / "RECORD", buffer.getvalue().encode(), 0o644)
