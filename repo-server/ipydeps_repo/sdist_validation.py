"""Checks a source distribution passes before it is published (the sdist spec, PEP 625).

A valid sdist here is ``{name}-{version}.tar.gz`` (or ``.zip``) with the name and version
in their normalized form, holding one top-level folder ``{name}-{version}/`` whose
``PKG-INFO`` names the same project and version. Every member path stays inside that
folder, links point inside it, there are no device files, every member reads back
intact, and the unpacked size stays under a bound (a small archive must not unpack to
terabytes on the build machine that trusts this repository).
"""

from __future__ import annotations

import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from .errors import ValidationError
from .validation import read_core_metadata

SDIST_SUFFIXES = (".tar.gz", ".zip")
MAX_UNPACKED_BYTES = 4 * 1024**3
MAX_MEMBERS = 100_000
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class SdistFacts:
    """What a valid sdist says about itself."""

    project: str
    version: str
    requires_python: str | None


def is_sdist_name(filename: str) -> bool:
    """Whether ``filename`` has the suffix of a source distribution."""
    return filename.endswith(SDIST_SUFFIXES)


def canonical_stem(name: str, version: str) -> str:
    """Return ``{name}-{version}`` as the sdist spec writes it (``My.Pkg`` 1.0 → my_pkg-1.0)."""
    return f"{canonicalize_name(name).replace('-', '_')}-{Version(version)}"


def inspect_sdist(path: Path, filename: str) -> SdistFacts:
    """Validate the sdist at ``path`` published as ``filename`` and return its facts.

    Raises:
        ValidationError: listing every problem found.
    """
    subject = f"sdist {filename!r}"
    try:
        name, version = parse_sdist_filename(filename)
    except (InvalidSdistFilename, InvalidVersion) as error:
        raise ValidationError(
            subject, [f"the file name is not a valid sdist name: {error}"]
        ) from None
    suffix = ".tar.gz" if filename.endswith(".tar.gz") else ".zip"
    stem = filename[: -len(suffix)]
    expected = canonical_stem(name, str(version))
    if stem != expected:
        raise ValidationError(
            subject,
            [f"the file name is not in normalized form; expected {expected + suffix!r}"],
            hint="build it with a current build backend (setuptools >= 69.3, hatchling, "
            "flit-core, poetry-core, uv build) or rename it",
        )
    try:
        if suffix == ".tar.gz":
            problems, pkg_info = _tar_problems(path, stem)
        else:
            problems, pkg_info = _zip_problems(path, stem)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValidationError(subject, [f"the archive is damaged: {error}"]) from None
    requires_python = None
    if pkg_info is None:
        problems.append(f"{stem}/PKG-INFO is missing")
    else:
        core = read_core_metadata("PKG-INFO", pkg_info, name, version)
        problems += core.problems
        requires_python = core.requires_python
    if problems:
        raise ValidationError(subject, problems)
    return SdistFacts(project=str(name), version=str(version), requires_python=requires_python)


def _member_problems(member: str, stem: str) -> list[str]:
    """Return why a member path would land outside ``{stem}/`` when unpacked."""
    if member.startswith("/") or "\\" in member or "\x00" in member:
        return [f"member {member!r} has an absolute or unsafe path"]
    parts = [part for part in member.split("/") if part not in ("", ".")]
    if ".." in parts:
        return [f"member {member!r} contains '..'"]
    if not parts or parts[0] != stem:
        return [f"member {member!r} is not inside the folder {stem + '/'!r}"]
    return []


def _tar_problems(path: Path, stem: str) -> tuple[list[str], bytes | None]:
    problems: list[str] = []
    pkg_info = None
    unpacked = 0
    count = 0
    with tarfile.open(path, "r:gz") as archive:
        for member in archive:
            count += 1
            if count > MAX_MEMBERS:
                problems.append(f"more than {MAX_MEMBERS} members")
                break
            problems += _member_problems(member.name, stem)
            if member.issym() or member.islnk():
                problems += _link_problems(member, stem)
                continue
            if member.isdir():
                continue
            if not member.isfile():
                problems.append(f"member {member.name!r} is not a file, folder or link")
                continue
            unpacked += member.size
            if unpacked > MAX_UNPACKED_BYTES:
                problems.append(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                break
            # Reading every member checks the gzip CRC and the tar structure to the end.
            stream = archive.extractfile(member)
            if stream is None:
                continue
            with stream:
                if posixpath.normpath(member.name) == f"{stem}/PKG-INFO":
                    pkg_info = stream.read()
                else:
                    while stream.read(_CHUNK):
                        pass
    return problems, pkg_info


def _link_problems(member: tarfile.TarInfo, stem: str) -> list[str]:
    """Return a problem when a link's target lies outside ``{stem}/``."""
    target = member.linkname
    if member.issym():
        target = posixpath.join(posixpath.dirname(member.name), target)
    if member.linkname.startswith("/") or _member_problems(posixpath.normpath(target), stem):
        return [f"link {member.name!r} points outside the sdist"]
    return []


def _zip_problems(path: Path, stem: str) -> tuple[list[str], bytes | None]:
    problems: list[str] = []
    pkg_info = None
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            return [f"more than {MAX_MEMBERS} members"], None
        for member in members:
            problems += _member_problems(member.filename, stem)
        if sum(member.file_size for member in members) > MAX_UNPACKED_BYTES:
            return [*problems, f"unpacks to more than {MAX_UNPACKED_BYTES} bytes"], None
        damaged = archive.testzip()
        if damaged is not None:
            problems.append(f"the zip member {damaged!r} is damaged (CRC mismatch)")
        if f"{stem}/PKG-INFO" in archive.namelist():
            pkg_info = archive.read(f"{stem}/PKG-INFO")
    return problems, pkg_info


