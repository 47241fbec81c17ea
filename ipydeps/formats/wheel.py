"""A wheel's names and layout (binary distribution format, PEP 427/491).

The rules every path that reads a wheel applies alike: which member names are safe, which
``.dist-info`` folder is the wheel's, where a ``.data`` member goes, what WHEEL says, and a
wheel file name's build tag.
"""

from __future__ import annotations

from collections.abc import Iterable
from email.parser import BytesHeaderParser
from pathlib import PurePosixPath
from typing import NamedTuple

from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .errors import FormatError

__all__ = [
    "CATEGORIES",
    "DistInfo",
    "WheelFacts",
    "build_tag",
    "dist_info_problem",
    "find_dist_info",
    "is_unsafe_path",
    "member_category",
    "read_wheel_file",
    "single_dist_info",
]

# The install scheme keys a ``.data`` folder may use (the wheel's root goes to one of the
# first two, as WHEEL's Root-Is-Purelib says).
CATEGORIES = ("purelib", "platlib", "scripts", "data", "headers")


class DistInfo(NamedTuple):
    """The wheel's metadata folder, ``<name>-<version>.dist-info``, and what it names."""

    folder: str
    name: NormalizedName
    version: str  # as the folder writes it

    @property
    def data_dir(self) -> str:
        """The ``<name>-<version>.data`` folder of the same wheel."""
        return self.folder.removesuffix(".dist-info") + ".data"


class WheelFacts(NamedTuple):
    """What the WHEEL file says that an installer acts on."""

    root_category: str  # "purelib" or "platlib": where the archive's root is installed
    problem: str | None  # why the wheel cannot be installed (a Wheel-Version that is not 1.x)


def is_unsafe_path(name: str) -> bool:
    """Tell whether an archive member's name could land outside its directory.

    Absolute, with a backslash, with a ``..`` component, or with a drive-like first
    component (``C:``); empty and ``.`` components are ignored, as pathlib does.
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return (
        name.startswith("/")
        or "\\" in name
        or ".." in parts
        or any(":" in part for part in parts[:1])
    )


def single_dist_info(names: Iterable[str]) -> str:
    """Return the one top-level ``*.dist-info`` folder among member ``names``.

    Raises ``FormatError`` when there is none, or more than one.
    """
    found = sorted(
        {
            name.split("/", 1)[0]
            for name in names
            if "/" in name and name.split("/", 1)[0].endswith(".dist-info")
        }
    )
    if len(found) != 1:
        raise FormatError(f"expected one .dist-info folder, found {', '.join(found) or 'none'}")
    return found[0]


def dist_info_problem(folder: str, name: NormalizedName, version: Version) -> str | None:
    """Say why ``folder`` is not the ``.dist-info`` of ``name`` ``version``; None if it is.

    Installers read the project from that folder's name: a ``hx_meta`` 3.0 wheel holding
    ``requests-3.0.dist-info`` installs as ``requests`` 3.0. The folder is compared as
    PyPI compares names, normalized (``Jinja2-3.1.2.dist-info`` belongs to ``jinja2``
    3.1.2); every ``-`` is tried as the separator, as old wheels escaped names loosely.
    """
    if _version_part(folder, name, version) is not None:
        return None
    return (
        f"the wheel's {folder} names another project or version than its file name "
        f"({name} {version}); installers would record it under that name"
    )


def find_dist_info(names: Iterable[str], filename: str) -> DistInfo:
    """Return the wheel's ``.dist-info`` folder: the only one, naming the file's project.

    ``names`` are the archive's member names, ``filename`` the wheel's file name.
    Raises ``FormatError`` for a file name that is not a wheel's, for no single folder,
    and for a folder of another project or version (``dist_info_problem``).
    """
    try:
        project, version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename as error:
        raise FormatError(f"not a wheel file name: {error}") from None
    folder = single_dist_info(names)
    written = _version_part(folder, project, version)
    if written is None:
        raise FormatError(str(dist_info_problem(folder, project, version)))
    return DistInfo(folder, project, written)


def _version_part(folder: str, name: NormalizedName, version: Version) -> str | None:
    """Return the version as ``folder`` writes it, when the folder is ``name`` ``version``'s."""
    stem = folder.removesuffix(".dist-info")
    for index, character in enumerate(stem):
        if character == "-" and canonicalize_name(stem[:index]) == name:
            try:
                if Version(stem[index + 1 :]) == version:
                    return stem[index + 1 :]
            except InvalidVersion:
                continue
    return None


def member_category(
    name: str, data_dir: str, root_category: str
) -> tuple[str, PurePosixPath] | str:
    """Return (install category, path inside it) for a safe member name, or why not.

    Members of the ``.data`` folder go to the category their second component names
    (``CATEGORIES``); every other member goes to ``root_category`` (the archive root).
    """
    path = PurePosixPath(name)
    if path.parts[0] != data_dir:
        return root_category, path
    if len(path.parts) < 3 or path.parts[1] not in CATEGORIES:
        return f"unknown .data entry {name!r}"
    return path.parts[1], PurePosixPath(*path.parts[2:])


def read_wheel_file(data: bytes) -> WheelFacts:
    """Read the WHEEL file: where the archive root goes, and a problem for Wheel-Version 2+."""
    headers = BytesHeaderParser().parsebytes(data)
    root = (
        "purelib"
        if str(headers.get("Root-Is-Purelib", "")).strip().lower() == "true"
        else "platlib"
    )
    version = headers.get("Wheel-Version")
    problem = (
        None if str(version or "").startswith("1.") else f"unsupported Wheel-Version {version!r}"
    )
    return WheelFacts(root, problem)


def build_tag(filename: str) -> tuple[int, str] | tuple[()]:
    """Return a wheel's PEP 427 build tag as (number, rest), or () without one (sorts first)."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) != 6:
        return ()
    digits = len(parts[2]) - len(parts[2].lstrip("0123456789"))
    return (int(parts[2][:digits]), parts[2][digits:]) if digits else ()
