"""Checks a source distribution passes before it is published (the sdist spec, PEP 625).

A valid sdist here is ``{name}-{version}.tar.gz`` (or ``.zip``) with the name and version
in their normalized form, holding one top-level folder ``{name}-{version}/`` whose
``PKG-INFO`` names the same project and version (and a valid Requires-Python). Every
member path stays inside that folder, links point inside it, there are no device files,
every member reads back intact, and the archive inflates within the wheels' limits
(``sdist_archive.py``: a small archive must not unpack to terabytes on the build machine
that trusts this repository, nor cost the server minutes of CPU to check).
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from ..errors import ValidationError
from .sdist_archive import read_sdist_archive
from .wheel import read_core_metadata
from .wheel_archive import InflateLimits

SDIST_SUFFIXES = (".tar.gz", ".zip")


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


def inspect_sdist(path: Path, filename: str, limits: InflateLimits | None = None) -> SdistFacts:
    """Validate the sdist at ``path`` published as ``filename`` and return its facts.

    ``limits`` bound what the archive may inflate to, as for a wheel.

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
        archive = read_sdist_archive(path, stem, limits or InflateLimits(), zipped=suffix == ".zip")
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ValidationError(subject, [f"the archive is damaged: {error}"]) from None
    problems, pkg_info = list(archive.problems), archive.pkg_info
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
