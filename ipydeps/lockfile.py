"""A notebook's PEP 751 lock file (``pylock.<name>.toml``): read, merge, write. Pure.

The lock is the union of what a notebook installed: per project, the version last
installed and the wheel files it came from (URL, size, sha256), the index they came
from, and in ``[packages.tool.ipydeps]`` the importable top-level names and the
repository's stored copies (their own sha256). ``[tool.ipydeps]`` says which repository
wrote it, whether a kernel restores it (``restore = false`` turns that off for this
notebook), and in ``apks`` the apks an install added (``LockedApk``: the requested ones and
those apk pulled in from our index), which only ipydeps restores: other PEP 751 installers
ignore tool tables and install the wheels part. Every document written is validated with
``packaging.pylock`` first, so uv (``uv pip install -r pylock.x.toml``) and any other PEP 751
reader can install it too.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from .errors import IpydepsError

__all__ = [
    "LockFileError",
    "LockedApk",
    "LockedFile",
    "LockedPackage",
    "NotebookLock",
    "lock_path_for",
    "merge_lock",
    "parse_lock",
    "render_lock",
]

CREATED_BY = "ipydeps"


class LockFileError(IpydepsError):
    """A lock file that cannot be read, or a lock that would not be valid PEP 751."""


@dataclass(frozen=True)
class LockedFile:
    """One file of a locked package: its name, where it was fetched, its size and sha256."""

    filename: str
    url: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class LockedPackage:
    """One project of the lock at the version the notebook installed last."""

    name: NormalizedName
    version: str
    index: str | None
    wheels: tuple[LockedFile, ...]
    top_level: tuple[str, ...] = ()
    stored: tuple[LockedFile, ...] = ()  # the repository's uncompressed copies of ``wheels``


@dataclass(frozen=True)
class LockedApk:
    """One apk an install added from our apk repository, as its APKINDEX record says.

    ``checksum`` is the record's ``C:`` field (``Q1`` + base64 SHA-1 of the control
    member, which holds the sha256 of the data): apk checks the package against it.
    ``repository`` is the apk repository it came from (``<base>/alpine/<branch>/<repo>``);
    ``top_level`` the importable names of the Python project it carries, if any.
    """

    name: str
    version: str
    checksum: str
    repository: str
    arch: str
    top_level: tuple[str, ...] = ()


@dataclass(frozen=True)
class NotebookLock:
    """What a notebook installed; ``restore`` False: kernels do not restore it."""

    packages: tuple[LockedPackage, ...]
    repository: str | None = None
    restore: bool = True
    apks: tuple[LockedApk, ...] = ()

    def package(self, name: str) -> LockedPackage | None:
        """Return the locked package of project ``name`` (any spelling), or None."""
        wanted = canonicalize_name(name)
        return next((package for package in self.packages if package.name == wanted), None)

    @property
    def top_level(self) -> frozenset[str]:
        """Every importable top-level name the locked packages and apks provide."""
        packages = (name for package in self.packages for name in package.top_level)
        return frozenset((*packages, *(name for apk in self.apks for name in apk.top_level)))


# Anything but letters, digits, "_" and "-" in a notebook's name becomes "-": PEP 751 allows
# no dot in the name part, and spaces or quotes would make `-r pylock.x.toml` awkward.
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def _pylock() -> ModuleType:
    """Return ``packaging.pylock``, imported when a lock is first read or written.

    It costs about 10 ms, and most installs (the command line, a kernel outside a
    notebook) never touch a lock.
    """
    import packaging.pylock

    return packaging.pylock


def lock_path_for(notebook: Path) -> Path:
    """``analysis.v2.ipynb`` -> ``pylock.analysis-v2.toml`` beside it."""
    name = _UNSAFE_IN_NAME.sub("-", notebook.stem).strip("-") or "notebook"
    path = notebook.with_name(f"pylock.{name}.toml")
    from packaging.pylock import is_valid_pylock_path  # see _pylock

    assert is_valid_pylock_path(path), path  # the rule above keeps every name valid
    return path


def merge_lock(
    old: NotebookLock | None,
    installed: Iterable[LockedPackage],
    *,
    repository: str | None,
    apks: Iterable[LockedApk] = (),
) -> NotebookLock:
    """Add what an install put in place to ``old``: the newest install of a project wins.

    The same version gains the new files (another platform's wheel); another version
    replaces the package. The order stays that of the first install (dependencies first).
    An apk replaces the locked apk of its name.
    """
    locked_apks = {apk.name: apk for apk in (old.apks if old else ())}
    locked_apks.update((apk.name, apk) for apk in apks)
    packages = {package.name: package for package in (old.packages if old else ())}
    for package in installed:
        before = packages.get(package.name)
        if before is not None and before.version == package.version:
            package = replace(
                package,
                wheels=_union(before.wheels, package.wheels),
                stored=_union(before.stored, package.stored),
                top_level=package.top_level or before.top_level,
            )
        packages[package.name] = package
    return NotebookLock(
        tuple(packages.values()),
        repository=repository or (old.repository if old else None),
        restore=old.restore if old else True,
        apks=tuple(locked_apks.values()),
    )


def _union(old: Sequence[LockedFile], new: Sequence[LockedFile]) -> tuple[LockedFile, ...]:
    fresh = {item.filename for item in new}
    return (*(item for item in old if item.filename not in fresh), *new)


def to_document(lock: NotebookLock) -> dict[str, Any]:
    """Return the PEP 751 table of ``lock``, keys as the standard spells them."""
    tool: dict[str, Any] = {"restore": lock.restore}
    if lock.repository:
        tool["repository"] = lock.repository
    if lock.apks:
        tool["apks"] = [
            {
                "name": apk.name,
                "version": apk.version,
                "checksum": apk.checksum,
                "repository": apk.repository,
                "arch": apk.arch,
                "top-level": list(apk.top_level),
            }
            for apk in lock.apks
        ]
    return {
        "lock-version": "1.0",
        "created-by": CREATED_BY,
        "packages": [_package_table(package) for package in lock.packages],
        "tool": {"ipydeps": tool},
    }


def _package_table(package: LockedPackage) -> dict[str, Any]:
    table: dict[str, Any] = {"name": package.name, "version": package.version}
    if package.index:
        table["index"] = package.index
    table["wheels"] = [_file_table(item) for item in package.wheels]
    ours: dict[str, Any] = {"top-level": list(package.top_level)}
    if package.stored:
        ours["stored"] = [_file_table(item) for item in package.stored]
    table["tool"] = {"ipydeps": ours}
    return table


def _file_table(item: LockedFile) -> dict[str, Any]:
    table: dict[str, Any] = {"name": item.filename, "url": item.url}
    if item.size is not None:
        table["size"] = item.size
    table["hashes"] = {"sha256": item.sha256}
    return table


def render_lock(lock: NotebookLock) -> str:
    """Return the lock as TOML, checked with ``packaging.pylock`` (else ``LockFileError``)."""
    document = to_document(lock)
    pylock = _pylock()
    try:
        pylock.Pylock.from_dict(document)
    except pylock.PylockValidationError as error:
        raise LockFileError(f"the lock would not be valid PEP 751: {error}") from error
    lines = [f"{key} = {_value(document[key])}" for key in ("lock-version", "created-by")]
    if not document["packages"]:
        lines.append("packages = []")  # required; an install of apks only locks no wheel
    for package in document["packages"]:
        lines += ["", "[[packages]]"]
        lines += [f"{key} = {_value(value)}" for key, value in package.items() if key != "tool"]
        lines += ["", "[packages.tool.ipydeps]"]
        lines += [f"{key} = {_value(value)}" for key, value in package["tool"]["ipydeps"].items()]
    lines += ["", "[tool.ipydeps]"]
    lines += [f"{key} = {_value(value)}" for key, value in document["tool"]["ipydeps"].items()]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    """Write a TOML value: strings, integers, booleans, arrays and inline tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string once DEL is escaped too; no \u surrogates
        # appear because non-ASCII characters are written as themselves.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        if value and isinstance(value[0], Mapping):
            return "[\n" + "".join(f"    {_value(item)},\n" for item in value) + "]"
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def parse_lock(text: str, *, where: str) -> NotebookLock:
    """Read a lock's TOML ``text`` (``where`` names it in errors); ``LockFileError`` if broken.

    Any valid PEP 751 lock is read; only its packages with wheels and a sha256 for each
    are kept (what ipydeps can restore), with the ``[tool.ipydeps]`` additions if present.
    """
    hint = "fix the file or delete it; the next install from the notebook writes a new one"
    pylock = _pylock()
    try:
        document = tomllib.loads(text)
        pylock.Pylock.from_dict(document)
    except (tomllib.TOMLDecodeError, pylock.PylockValidationError) as error:
        raise LockFileError(f"{where} is not a valid PEP 751 lock: {error}", hint=hint) from error
    except RecursionError as error:
        raise LockFileError(f"{where} is nested too deeply to be read", hint=hint) from error
    tool = _table(_table(document.get("tool")).get("ipydeps"))
    packages = []
    for table in document["packages"]:
        ours = _table(_table(table.get("tool")).get("ipydeps"))
        wheels = _files(table.get("wheels"))
        if wheels and "version" in table:
            packages.append(
                LockedPackage(
                    name=canonicalize_name(table["name"]),
                    version=str(table["version"]),
                    index=table.get("index") if isinstance(table.get("index"), str) else None,
                    wheels=wheels,
                    top_level=tuple(
                        name for name in ours.get("top-level", ()) if _is_module_name(name)
                    ),
                    stored=_files(ours.get("stored")),
                )
            )
    repository = tool.get("repository")
    return NotebookLock(
        tuple(packages),
        repository=repository if isinstance(repository, str) else None,
        restore=tool.get("restore", True) is not False,
        apks=_apks(tool.get("apks"), where=where, hint=hint),
    )


def _apks(value: Any, *, where: str, hint: str) -> tuple[LockedApk, ...]:
    """Read ``[tool.ipydeps] apks``; an entry without every field as a string is refused.

    Refused rather than skipped: a restore that left out an apk the notebook needs would
    install a different environment than the lock says.
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise LockFileError(f"{where}: [tool.ipydeps] apks is not a list", hint=hint)
    apks = []
    for item in value:
        table = _table(item)
        keys = ("name", "version", "checksum", "repository", "arch")
        fields = [field for key in keys if isinstance(field := table.get(key), str) and field]
        if len(fields) != len(keys):
            raise LockFileError(
                f"{where}: an entry of [tool.ipydeps] apks lacks one of name, version, "
                f"checksum, repository, arch: {item!r}"[:300],
                hint=hint,
            )
        top_level = table.get("top-level")
        names = (
            tuple(name for name in top_level if _is_module_name(name))
            if isinstance(top_level, list)
            else ()
        )
        name, version, checksum, repository, arch = fields
        apks.append(LockedApk(name, version, checksum, repository, arch, names))
    return tuple(apks)


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _files(value: Any) -> tuple[LockedFile, ...]:
    files = []
    for item in value if isinstance(value, list) else ():
        table = _table(item)
        sha256 = _table(table.get("hashes")).get("sha256")
        url, size = table.get("url"), table.get("size")
        name = table.get("name") or (url.rsplit("/", 1)[-1] if isinstance(url, str) else None)
        if isinstance(sha256, str) and isinstance(url, str) and isinstance(name, str):
            files.append(
                LockedFile(name, url, sha256.lower(), size if isinstance(size, int) else None)
            )
    return tuple(files)


def _is_module_name(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier()
