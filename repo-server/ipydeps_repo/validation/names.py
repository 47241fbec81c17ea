"""The names a published file may have: safe basenames, canonical wheel names, apk targets."""

from __future__ import annotations

import re

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from ..errors import ValidationError

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
            "only wheels (.whl), sdists (.tar.gz, .zip) and Alpine packages (.apk) can be published"
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
