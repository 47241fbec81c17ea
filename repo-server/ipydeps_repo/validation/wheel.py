"""A wheel's own claims, checked: its archive, its ``.dist-info`` name and its core metadata.

``inspect_wheel`` is what every wheel passes before the store takes it (uploads, the mirror,
the farm, a rescan): the archive checks of ``wheel_archive.py``, then the names inside
against the file name. ``read_core_metadata`` reads METADATA and PKG-INFO alike.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ipydeps.formats.wheel import dist_info_problem

from ..errors import ValidationError
from .wheel_archive import InflateLimits, check_archive


@dataclass(frozen=True)
class WheelFacts:
    """What a valid wheel says about itself."""

    name: str
    project: str
    version: str
    requires_python: str | None
    metadata: bytes


def inspect_wheel(path: Path, filename: str, limits: InflateLimits | None = None) -> WheelFacts:
    """Validate the wheel at ``path`` published as ``filename`` and return its facts.

    Checks: the name parses (PEP 427/491); the archive is safe (``wheel_archive``: member
    paths, duplicates, local headers against the central directory, every member inflated
    within ``limits`` and matching its CRC and its RECORD hash); it has exactly one
    ``.dist-info`` with METADATA, WHEEL and RECORD, named for the file name's project and
    version; METADATA's Name and Version match the file name.

    Raises:
        ValidationError: listing every problem found.
    """
    subject = f"wheel {filename!r}"
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise ValidationError(
            subject, [f"the file name is not a valid wheel name: {error}"]
        ) from None
    if not zipfile.is_zipfile(path):
        raise ValidationError(subject, ["the file is not a zip archive"])
    with path.open("rb") as stream:
        facts = check_archive(stream, path.stat().st_size, limits or InflateLimits())
    problems = list(facts.problems)
    folder = [] if facts.dist_info is None else dist_info_problems(facts.dist_info, name, version)
    metadata = facts.kept.get("METADATA")
    if metadata is None:
        raise ValidationError(subject, problems + folder or ["METADATA is missing"])
    core = read_core_metadata("METADATA", metadata, name, version)
    problems += core.problems + folder
    if problems:
        raise ValidationError(subject, problems)
    return WheelFacts(
        name=core.name,
        project=str(name),
        version=str(version),
        requires_python=core.requires_python,
        metadata=metadata,
    )


def dist_info_problems(folder: str, name: NormalizedName, version: Version) -> list[str]:
    """Return why a wheel's ``.dist-info`` folder is not the one of ``name`` ``version``.

    The rule is the client's too (``ipydeps.formats.wheel.dist_info_problem``): installers
    record a wheel under the project its folder names.
    """
    problem = dist_info_problem(folder, name, version)
    return [] if problem is None else [problem]


@dataclass(frozen=True)
class CoreMetadata:
    """What a distribution's core metadata says of itself, and how it disagrees with its name."""

    name: str
    requires_python: str | None
    problems: list[str]


def read_core_metadata(
    label: str, metadata: bytes, name: NormalizedName, version: Version
) -> CoreMetadata:
    """Read a METADATA or PKG-INFO file: Name and Version against the file name, Requires-Python.

    ``label`` names the file in the problems (``METADATA``, ``PKG-INFO``): a distribution
    whose metadata names another project or version would be listed under the wrong one,
    and one whose Requires-Python does not parse would hide the project from uv.
    """
    message = BytesParser(policy=compat32).parsebytes(metadata, headersonly=True)
    meta_name = str(message.get("Name", "")).strip()
    meta_version = str(message.get("Version", "")).strip()
    problems = []
    if canonicalize_name(meta_name) != name:
        problems.append(f"{label} Name {meta_name!r} does not match the file name's {str(name)!r}")
    if not _same_version(meta_version, version):
        problems.append(
            f"{label} Version {meta_version!r} does not match the file name's {str(version)!r}"
        )
    requires_python = message.get("Requires-Python")
    requires = str(requires_python).strip() if requires_python else None
    if requires is not None and not _valid_specifier(requires):
        # It is published in the index pages: uv then refuses the whole page (no version of
        # the project at all), and pip skips the file.
        problems.append(
            f"{label} Requires-Python {requires!r} is not a valid version specifier "
            "(PEP 440, e.g. '>=3.9' or '>=3.9,<4')"
        )
    return CoreMetadata(meta_name, requires, problems)


def _valid_specifier(text: str) -> bool:
    try:
        SpecifierSet(text)
    except InvalidSpecifier:
        return False
    return True


def _same_version(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False
