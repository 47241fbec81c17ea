"""Where one wheel's files go before the commit: its staging directories and installed RECORD.

The destination side of the seam between reading a wheel and placing its files (as
pypa/installer's ``WheelDestination`` is to its ``WheelSource``). Two readers feed it:
wheel.py (a downloaded wheel, unpacked in threads) and wheelstream.py (a stored copy,
written as it streams in). They decide what bytes each member has; a
``StagingDestination`` decides where each member goes and which names are refused, and
writes what a wheel does not ship as such: its entry-point scripts, ``#!python`` rewritten,
``INSTALLER = ipydeps`` and the installed RECORD. Staging lives inside each target
directory so that committing is a handful of ``rename`` calls (see transaction.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from packaging.utils import NormalizedName

from ..environment import InstallScheme
from ..errors import InvalidWheelError
from ..formats.records import record_hash_of, render_record
from ..formats.scripts import console_script, parse_entry_points, rewrite_shebang
from ..formats.wheel import is_unsafe_path, member_category
from .journal import STAGING_PREFIX, is_reserved_name

__all__ = ["INSTALLER_NAME", "Placement", "StagedWheel", "StagingDestination", "write_file"]

INSTALLER_NAME = "ipydeps"


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
    # Name of this wheel's directory inside the staging dirs (default: the .dist-info stem).
    stage_key: str = ""


class Placement(NamedTuple):
    """Where one member goes: its category, its file in staging, its installed RECORD path."""

    category: str
    relative: PurePosixPath
    path: Path
    installed: str


class StagingDestination:
    """Places one wheel's members in staging and writes its scripts, INSTALLER and RECORD.

    ``lib_category`` is where the archive root goes (WHEEL's Root-Is-Purelib).
    ``dist_info`` may be set later (a stream learns it at its end), before ``finish``.
    """

    def __init__(
        self,
        scheme: InstallScheme,
        staging_name: str,
        *,
        name: NormalizedName,
        version: str,
        lib_category: str,
        dist_info: str = "",
        stage_key: str = "",
    ) -> None:
        targets = scheme.roots()
        targets["headers"] = scheme.headers / name
        self.scheme = scheme
        self.staging_name = staging_name
        self.staged = StagedWheel(
            name=name,
            version=version,
            dist_info=dist_info,
            lib_category=lib_category,
            staging={},
            targets=targets,
            stage_key=stage_key,
        )
        self.records: list[tuple[str, str, str]] = []  # installed path, hash, size
        self._lib_root: str | None = None
        self._top_level: set[str] = set()
        self._pth: list[str] = []

    # -- places ------------------------------------------------------------------------------

    def root(self, category: str) -> Path:
        """Return this wheel's staging directory for ``category`` (made on first use)."""
        staged = self.staged
        root = staged.staging.get(category)
        if root is None:
            target = staged.targets[category]
            anchor = target
            while not anchor.is_dir() and anchor.parent != anchor:
                anchor = anchor.parent
            key = staged.stage_key or staged.dist_info.removesuffix(".dist-info")
            stage_dir = anchor / self.staging_name / key
            staged.anchors[stage_dir] = anchor
            root = stage_dir / target.relative_to(anchor)
            staged.staging[category] = root
            root.mkdir(parents=True, exist_ok=True)
        return root

    def name_problem(self, name: str) -> str | None:
        """Say why a member name is refused (unsafe, or named like our journals); None if not."""
        # Plain string work first, for the thousands of names that hold none of the
        # characters either check looks for (under the GIL, while other streams wait).
        if not (
            name.startswith("/")
            or "\\" in name
            or ".." in name
            or ":" in name
            or STAGING_PREFIX in name
        ):
            return None
        if is_unsafe_path(name):
            return f"unsafe path {name!r}"
        if is_reserved_name(name):
            return f"{name!r} is named like ipydeps' own install journals"
        return None

    def lib_path(self, name: str) -> str:
        """Return the staging file of an archive-root member checked with ``name_problem``.

        Plain string work: a stream calls this for each of thousands of members under the GIL.
        """
        if self._lib_root is None:
            self._lib_root = str(self.root(self.staged.lib_category))
        top, slash, _ = name.partition("/")
        self._note_lib_member(top, not slash)
        return f"{self._lib_root}/{name}"

    def place(self, name: str, data_dir: str) -> Placement | str:
        """Return where member ``name`` goes, or why it is refused (``data_dir``: ``x-1.data``)."""
        problem = self.name_problem(name)
        if problem is not None:
            return problem
        placed = member_category(name, data_dir, self.staged.lib_category)
        if isinstance(placed, str):
            return placed
        category, relative = placed
        if category in ("purelib", "platlib"):
            self._note_lib_member(relative.parts[0], len(relative.parts) == 1)
        return Placement(
            category,
            relative,
            self.root(category) / relative,
            self.installed_path(category, relative),
        )

    def installed_path(self, category: str, relative: PurePosixPath) -> str:
        """Return the RECORD path: relative to the directory that holds the .dist-info."""
        if category == self.staged.lib_category:
            return relative.as_posix()
        lib_root = self.staged.targets[self.staged.lib_category]
        final = self.staged.targets[category] / relative
        return Path(os.path.relpath(final, lib_root)).as_posix()

    def _note_lib_member(self, head: str, single: bool) -> None:
        """Collect importable top-level names and top-level .pth files of the lib directory.

        ``head`` is a lib member's first path component; ``single`` says it is the whole path.
        """
        if single and head.endswith(".pth"):
            self._pth.append(head)
        elif not head.endswith((".dist-info", ".data")):
            self._top_level.add(head.split(".", 1)[0] if single else head)

    # -- what the wheel does not ship as is ----------------------------------------------------

    def add_record(self, installed: str, hash_: str, size: int) -> None:
        """Note one file written, for the installed RECORD."""
        self.records.append((installed, hash_, str(size)))

    def write_scripts(self, shipped: list[tuple[str, bytes]], entry_points: bytes | None) -> None:
        """Write the wheel's own scripts (``#!python`` rewritten) and its entry-point scripts.

        ``shipped`` holds (file name, bytes) of the ``.data/scripts`` members. Raises
        ``InvalidWheelError`` for an invalid ``entry_points.txt`` or script name.
        """
        python = self.scheme.python
        scripts = [(name, rewrite_shebang(data, python)) for name, data in shipped]
        if entry_points is not None:
            entries, problems = parse_entry_points(entry_points.decode("utf-8", "replace"))
            if problems:
                raise InvalidWheelError(
                    f"Refused {self.staged.name} {self.staged.version}: " + "; ".join(problems),
                    hint="the wheel is malformed or hostile; tell its publisher",
                )
            scripts += [(entry.name, console_script(entry, python)) for entry in entries]
        if not scripts:
            return
        root = self.root("scripts")
        for name, data in scripts:
            if "/" in name or name in ("", ".", ".."):
                raise InvalidWheelError(f"unsafe script name {name!r}")
            write_file(root / name, data, 0o755)
            self.add_record(
                self.installed_path("scripts", PurePosixPath(name)), record_hash_of(data), len(data)
            )

    def finish(self, bytes_written: int) -> StagedWheel:
        """Write INSTALLER and RECORD into the staged .dist-info; return the staged wheel."""
        staged = self.staged
        dist_dir = self.root(staged.lib_category) / staged.dist_info
        installer = (INSTALLER_NAME + "\n").encode()
        write_file(dist_dir / "INSTALLER", installer, 0o644)
        self.add_record(f"{staged.dist_info}/INSTALLER", record_hash_of(installer), len(installer))
        write_file(
            dist_dir / "RECORD", render_record(self.records, f"{staged.dist_info}/RECORD"), 0o644
        )
        staged.files = len(self.records)
        staged.bytes_written = bytes_written
        staged.top_level = tuple(sorted(name for name in self._top_level if name.isidentifier()))
        staged.pth_files = tuple(self._pth)
        return staged


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a new file ``path`` (parents made) with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(handle, data)
    finally:
        os.close(handle)
