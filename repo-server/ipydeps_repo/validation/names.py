"""Checks every upload passes before it becomes visible: safe names, and complete wheel checks."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..errors import ValidationError
from .wheel_archive import InflateLimits, check_archive

# A published name is one path segment of plain characters: no separators, no NUL,
# no leading dot (hidden/temp files), and no ".." anywhere (cheap defence in depth).
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")
MAX_NAME_LENGTH = 200
_BRANCH_RE = re.compile(r"v\d+\.\d+|edge")
_SEGMENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def filename_problems(filename: str) -> list[str]:
    """Return why ``filename`` may not be published (empty list: it is a safe basename)."""
    problems = []
    if not filename:
        return ["the file name is empty"]
    if "/" in filename or "\\" in filename:
        problems.append("the file name contains a path separator")
    if "\x00" in filename:
        problems.append("the file name contains a NUL character")
    if ".." in filename:
        problems.append("the file name contains '..'")
    if len(filename) > MAX_NAME_LENGTH:
        problems.append(f"the file name is longer than {MAX_NAME_LENGTH} characters")
    if not problems and _SAFE_NAME_RE.fullmatch(filename) is None:
        problems.append(
            "the file name may only contain letters, digits and . _ + ~ - "
            "and must start with a letter or digit"
        )
    return problems


def check_filename(filename: str) -> None:
    """Refuse a name that is not a plain, safe basename of a wheel, sdist or apk.

    Raises:
        ValidationError: listing every problem with the name.
    """
    problems = filename_problems(filename)
    if not problems and not filename.endswith((".whl", ".apk", ".tar.gz", ".zip")):
        problems.append(
            "only wheels (.whl), sdists (.tar.gz, .zip) and Alpine packages (.apk) "
            "can be published"
        )
    if problems:
        raise ValidationError(f"file name {filename!r}", problems)


def project_of_filename(filename: str) -> str | None:
    """Return the project a file name publishes to, for a token's project scope.

    A wheel's or sdist's normalized project (the store files it under that name, after
    checking that its content says the same), or an apk's package name. None when the
    name does not parse (the upload is refused for that anyway).
    """
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[0])
        if filename.endswith((".tar.gz", ".zip")):
            return str(parse_sdist_filename(filename)[0])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    if filename.endswith(".apk"):
        # <pkgname>-<pkgver>-r<pkgrel>.apk, checked against .PKGINFO when published
        parts = filename.removesuffix(".apk").rsplit("-", 2)
        return parts[0] if len(parts) == 3 and parts[0] else None
    return None


def check_target(branch: str, repo: str, arch: str | None = None) -> None:
    """Refuse an apk target that would not be one plain directory per level.

    Raises:
        ValidationError: for a branch that is not ``vX.Y``/``edge``, or a bad repo/arch name.
    """
    problems = []
    if _BRANCH_RE.fullmatch(branch) is None:
        problems.append(f"branch {branch!r} is not like 'v3.22' or 'edge'")
    if _SEGMENT_RE.fullmatch(repo) is None:
        problems.append(f"repository {repo!r} must be lower-case letters, digits, . _ -")
    if arch is not None and _SEGMENT_RE.fullmatch(arch) is None:
        problems.append(f"architecture {arch!r} must be lower-case letters, digits, . _ -")
    if problems:
        raise ValidationError("apk target", problems)


def canonical_wheel_filename(filename: str) -> str:
    """Return ``filename`` with its project and version in their normalized forms.

    The binary distribution format spec writes the project as its normalized name with
    ``_`` for runs of ``-_.``, all lower case, and the version in its PEP 440 normal form:
    ``Six-1.17.00-py3-none-any.whl`` is ``six-1.17.0-py3-none-any.whl``. A name that does
    not parse as a wheel's is returned unchanged (``inspect_wheel`` says what is wrong).
    """
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return filename
    parts = filename.split("-")
    return "-".join([name.replace("-", "_"), str(version), *parts[2:]])


def check_canonical_wheel_filename(filename: str) -> None:
    """Refuse a wheel name whose project or version is not spelled in normal form.

    Two spellings of one release (``Six-1.17.0``, ``six-1.17.00``) are two files that
    pip and uv both take for that release, so only the normal spelling is published.

    Raises:
        ValidationError: naming the spelling to use.
    """
    canonical = canonical_wheel_filename(filename)
    if canonical == filename:
        return
    problems = []
    given_name, given_version = filename.split("-")[:2]
    wanted_name, wanted_version = canonical.split("-")[:2]
    if given_name != wanted_name:
        problems.append(
            f"the project is spelled {given_name!r}; a wheel's file name spells it "
            f"{wanted_name!r} (normalized, lower case, '_' for '-' and '.')"
        )
    if given_version != wanted_version:
        problems.append(
            f"the version is spelled {given_version!r}; its normal form (PEP 440) is "
            f"{wanted_version!r}"
        )
    raise ValidationError(f"wheel {filename!r}", problems, hint=f"publish it as {canonical}")


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

    Installers read the project from that folder's name: a ``hx_meta`` 3.0 wheel holding
    ``requests-3.0.dist-info`` installs as ``requests`` 3.0. The folder is compared as
    PyPI compares names, normalized (``Jinja2-3.1.2.dist-info`` belongs to ``jinja2``
    3.1.2); every ``-`` is tried as the separator, as old wheels escaped names loosely.
    """
    stem = folder.removesuffix(".dist-info")
    for index, character in enumerate(stem):
        if (character == "-" and canonicalize_name(stem[:index]) == name
                and _same_version(stem[index + 1:], version)):
            return []
    return [f"the wheel's {folder} names another project or version than its file name "
            f"({name} {version}); installers would record it under that name"]


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
