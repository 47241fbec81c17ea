"""All-or-nothing wheel installs: stage, then commit with renames journaled for rollback.

The commit and its rollback run with Ctrl-C held (interrupts.py): an interrupt waits
until the environment is whole again, before or after. Every rename goes through the
write-ahead journal (journal.py), which a later ipydeps call replays if this process dies.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from ..environment import InstallScheme
from ..errors import InstallError
from ..formats.records import record_paths
from ..interrupts import Held, interrupts_held
from .journal import (
    JOURNAL_SUFFIX,
    RenameJournal,
    Renamer,
    recover_interrupted,
    transaction_name,
)
from .staging import StagedWheel
from .wheel import stage_wheel
from .wheelstream import WheelStreamStager


@dataclass(frozen=True)
class InstalledWheel:
    """What committing one wheel did, for the Result and for kernel refresh."""

    name: NormalizedName
    version: str
    files: int
    bytes_written: int
    top_level: tuple[str, ...]
    pth_files: tuple[Path, ...]
    removed_version: str | None  # the version moved aside (upgrade), if any


class WheelTransaction:
    """Stage wheels (thread-safe), then commit them all or none.

    Use as a context manager: leaving the block with an exception (including
    ``KeyboardInterrupt``) rolls back every rename and removes the staging
    directories, so the environment is exactly as before. ``commit`` itself
    rolls back when it fails half-way. ``renamer`` does the renames (tests pass one that
    stops at a chosen rename).
    """

    def __init__(
        self,
        scheme: InstallScheme,
        *,
        workers: int = 4,
        cancel: threading.Event | None = None,
        renamer: Renamer | None = None,
    ) -> None:
        self.scheme = scheme
        self.cancel = cancel or threading.Event()
        # Leftovers of an install whose process was killed are undone before we start.
        self.recovery = recover_interrupted(scheme.purelib, set(scheme.roots().values()))
        self.recovered = self.recovery.recovered
        self.name = transaction_name(os.urandom(6).hex())
        self._journal = RenameJournal(scheme.purelib / (self.name + JOURNAL_SUFFIX), renamer)
        self._executor = ThreadPoolExecutor(
            max_workers=max(workers, 1), thread_name_prefix="ipydeps-unpack"
        )
        self._lock = threading.Lock()
        self._staged: list[StagedWheel] = []
        self._stagers: list[WheelStreamStager] = []  # made by stream_stager, for the cache
        # Set when a rollback could not undo everything: the journal and the staging
        # directories (the only copies of what was moved aside) then stay for recovery.
        self._unsettled = False
        self._emptied: set[Path] = set()
        self._outside_backups: list[Path] = []
        self._backup_count = 0
        self.committed = False

    def __enter__(self) -> WheelTransaction:
        return self

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            if kind is not None and not self.committed:
                with interrupts_held():
                    self.rollback()
        finally:
            self.close()

    def stage(self, wheel: Path) -> StagedWheel:
        """Unpack a hash-verified ``wheel`` into staging; raises ``InvalidWheelError``."""
        staged = stage_wheel(
            wheel, self.scheme, self.name, executor=self._executor, cancel=self.cancel
        )
        self.add(staged)
        return staged

    def stream_stager(
        self,
        filename: str,
        size: int | None = None,
        *,
        expected_outline: str | None = None,
        url: str | None = None,
    ) -> WheelStreamStager:
        """Return a stager that installs a stored copy of ``filename`` as it downloads.

        ``size`` is the copy's size from the index (more bytes are refused);
        ``expected_outline`` its outline sha256 from the index, which ``finish`` checks
        (``url`` names the copy in a mismatch). ``add`` what its ``finish`` returns to
        include the wheel in this transaction.
        """
        stager = WheelStreamStager(
            filename,
            self.scheme,
            self.name,
            cancel=self.cancel,
            size=size,
            expected_outline=expected_outline,
            url=url,
        )
        with self._lock:
            self._stagers.append(stager)
        return stager

    def committed_stagers(self) -> list[WheelStreamStager]:
        """Return the stream stagers whose wheel this transaction committed (none before it).

        Their outline and written members describe files now in place (the shared cache
        keeps them: see ``ipydeps.cachefill``).
        """
        if not self.committed:
            return []
        with self._lock:
            staged = {id(wheel) for wheel in self._staged}
            return [stager for stager in self._stagers if id(stager.staged) in staged]

    def add(self, staged: StagedWheel) -> None:
        """Include a wheel staged by a ``stream_stager`` in this transaction."""
        with self._lock:
            self._staged.append(staged)

    def commit(
        self,
        *,
        order: list[NormalizedName] | None = None,
        before_each: Callable[[StagedWheel], None] | None = None,
    ) -> list[InstalledWheel]:
        """Move every staged wheel into place, replacing older installs of the same projects.

        ``before_each`` is called with each wheel before it is moved (progress
        display; an exception from it aborts). Raises ``InstallError`` (after
        rolling back) when a rename fails. Ctrl-C is held until the commit, or its
        rollback, is whole; then ``KeyboardInterrupt`` is raised, with a note saying which.
        """
        staged = list(self._staged)
        if order is not None:
            rank = {name: index for index, name in enumerate(order)}
            staged.sort(key=lambda item: rank.get(item.name, len(rank)))
        hold = Held()  # bound even if a SIGINT comes before the handler is swapped
        try:
            with interrupts_held() as hold:
                return self._commit(staged, before_each)
        except KeyboardInterrupt as interrupt:
            if not hold.held:
                raise  # raised in the commit itself (by before_each): rolled back, as any error
            if self.committed:
                outcome = "which was finished first: the wheels are installed"
            elif self._unsettled:
                outcome = "which failed and could not be rolled back completely (see above)"
            else:
                outcome = "which was rolled back: none of the wheels was installed"
            interrupt.add_note(f"ipydeps: the interrupt came during the commit, {outcome}")
            raise

    def _commit(
        self, staged: list[StagedWheel], before_each: Callable[[StagedWheel], None] | None
    ) -> list[InstalledWheel]:
        results: list[InstalledWheel] = []
        try:
            for wheel in staged:
                if before_each is not None:
                    before_each(wheel)
                removed = self._move_aside_installed(wheel.name)
                for stage_dir, anchor in wheel.anchors.items():
                    for child in sorted(os.listdir(stage_dir)):
                        self._merge(stage_dir / child, anchor / child)
                lib = wheel.targets[wheel.lib_category]
                results.append(
                    InstalledWheel(
                        name=wheel.name,
                        version=wheel.version,
                        files=wheel.files,
                        bytes_written=wheel.bytes_written,
                        top_level=wheel.top_level,
                        pth_files=tuple(lib / name for name in wheel.pth_files),
                        removed_version=removed,
                    )
                )
        except OSError as error:
            self.rollback()
            raise InstallError(
                f"Installing failed ({error}); the environment was restored",
                hint="check free disk space and permissions, then retry",
            ) from None
        except BaseException:
            self.rollback()
            raise
        self._journal.mark_committed()
        self.committed = True
        return results

    def rollback(self) -> None:
        """Undo every rename done so far, newest first (restores moved-aside old files).

        Idempotent, and never deletes: a rename that cannot be undone (its paths were
        changed by something else meanwhile) is left, with the journal and the staging
        directories holding the moved-aside copies, and ``InstallError`` names it; the
        next ipydeps call tries again.
        """
        problems = self._journal.undo()
        if problems:
            self._unsettled = True
            raise InstallError(
                "Installing failed and the environment could not be restored completely: "
                + "; ".join(problems),
                hint=f"nothing was deleted: the moved files are kept in {self.name} "
                "directories and its journal; the next ipydeps call tries again once "
                "the paths above are free",
            )

    def close(self) -> None:
        """Stop the unpack threads and delete staging and backup directories.

        After a rollback that could not undo everything, both stay (see ``rollback``).
        """
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._journal.close(keep=self._unsettled)
        if self._unsettled:
            return
        for root in self._staging_roots():
            shutil.rmtree(root, ignore_errors=True)
        if self.committed:
            for backup in self._outside_backups:
                if backup.is_dir() and not backup.is_symlink():
                    shutil.rmtree(backup, ignore_errors=True)
                else:
                    backup.unlink(missing_ok=True)
            for directory in sorted(self._emptied, key=lambda path: len(path.parts), reverse=True):
                _remove_if_empty(directory)

    def _staging_roots(self) -> Iterator[Path]:
        roots = {stage_dir.parent for wheel in self._staged for stage_dir in wheel.anchors}
        # A wheel that failed while staging is not in _staged; its staging dir sits in an
        # install directory or in one of their ancestors (see StagedWheel.anchors).
        for root in self.scheme.roots().values():
            roots |= {directory / self.name for directory in (root, *root.parents)}
        yield from (root for root in roots if root.exists())

    def _rename(self, source: Path, destination: Path) -> None:
        self._journal.rename(source, destination)  # written ahead: see journal.py

    def _backup_path(self, path: Path) -> Path:
        # Backups sit in the staging dir of the same root, so the rename stays on one filesystem.
        for root in sorted(self.scheme.roots().values(), key=lambda p: len(p.parts), reverse=True):
            if path.is_relative_to(root):
                self._backup_count += 1
                backup = root / self.name / "backup" / f"{self._backup_count}-{path.name}"
                backup.parent.mkdir(parents=True, exist_ok=True)
                return backup
        # A RECORD entry outside every install directory: keep its backup beside it.
        backup = path.with_name(f"{path.name}{self.name}")
        self._outside_backups.append(backup)
        return backup

    def _merge(self, source: Path, destination: Path) -> None:
        if not os.path.lexists(destination):
            self._rename(source, destination)
        elif source.is_dir() and destination.is_dir() and not destination.is_symlink():
            for child in sorted(os.listdir(source)):
                self._merge(source / child, destination / child)
        else:
            # Another file is in the way (pip overwrites too): keep it aside for rollback.
            self._rename(destination, self._backup_path(destination))
            self._rename(source, destination)

    def _move_aside_installed(self, name: NormalizedName) -> str | None:
        """Move an installed distribution of ``name`` (any version) aside; return its version."""
        removed: str | None = None
        for lib in {self.scheme.purelib, self.scheme.platlib}:
            if not lib.is_dir():
                continue
            for entry in os.listdir(lib):
                if not entry.endswith(".dist-info"):
                    continue
                project, _, version = entry[: -len(".dist-info")].partition("-")
                if canonicalize_name(project) != name:
                    continue
                self._remove_recorded(lib, lib / entry)
                removed = version
        return removed

    def _remove_recorded(self, lib: Path, dist_info: Path) -> None:
        owned: set[Path] = set()
        record = dist_info / "RECORD"
        if record.is_file():
            owned = {
                Path(os.path.normpath(lib / path)) for path in record_paths(record.read_bytes())
            }
        top_dirs = {
            path.relative_to(lib).parts[0]
            for path in owned
            if path.is_relative_to(lib) and len(path.relative_to(lib).parts) > 1
        }
        whole = {lib / top for top in top_dirs if _wholly_owned(lib / top, owned)}
        whole.add(dist_info)
        for directory in sorted(whole):
            if directory.exists():
                self._rename(directory, self._backup_path(directory))
        for path in sorted(owned):
            if any(path.is_relative_to(directory) for directory in whole):
                continue
            if os.path.lexists(path) and not path.is_dir():
                self._rename(path, self._backup_path(path))
                self._emptied.add(path.parent)


def _wholly_owned(directory: Path, owned: set[Path]) -> bool:
    """Tell whether every file under ``directory`` belongs to the distribution (bytecode aside)."""
    if not directory.is_dir() or directory.is_symlink():
        return False
    for root, dirs, files in os.walk(directory):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        for name in files:
            if Path(root, name) not in owned:
                return False
    return True


def _remove_if_empty(directory: Path) -> None:
    pycache = directory / "__pycache__"
    if pycache.is_dir() and not any(p.suffix != ".pyc" for p in pycache.iterdir()):
        shutil.rmtree(pycache, ignore_errors=True)
    try:
        directory.rmdir()
    except OSError:
        return
