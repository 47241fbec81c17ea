"""The store: validates uploads, moves them atomically into the static tree, regenerates indexes."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import ConflictError, TooLargeError
from ..fileops import NO_SPACE, PublishResult, sha256_file, storage_error, write_atomic
from ..settings import DEFAULT_MAX_UPLOAD_BYTES, DataLayout
from ..validation.names import canonical_wheel_filename, check_filename, check_target
from ..validation.sdist import is_sdist_name
from ..validation.wheel_archive import InflateLimits
from .apks import apk_directories, apk_listing, publish_apk, regenerate_apk_index
from .distributions import (
    project_folders,
    publish_wheel,
    regenerate_project,
    regenerate_root,
    wheel_listing,
)
from .locking import file_lock, lock_open_file
from .sdists import publish_sdist

# Re-exported: the mirror, the farm and the CLI import these from here.
__all__ = ["Progress", "PublishResult", "Store", "sha256_file", "write_atomic"]

Progress = Callable[[int, int, str], None]
_CHUNK = 1024 * 1024


@contextmanager
def _owning(temp: Path) -> Iterator[None]:
    """Hold an flock on ``temp`` while the store validates and places it (see leftovers.py)."""
    try:
        descriptor = os.open(temp, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        yield  # gone already: publishing it fails on its own
        return
    try:
        lock_open_file(descriptor)
        yield
    finally:
        os.close(descriptor)


class Store:
    """One data directory: the public tree, private state, and the publish operations on them.

    Several stores (server replicas, the CLI) may share one directory: every change of
    the tree happens under ``<state>/locks/publish.lock``. ``stored_copies`` says whether
    each wheel gets a ``.stored`` copy (see ``stored_copy.py``); give every store of one
    directory the same value, as a store with it off deletes the copies it comes across.
    ``inflate_limits`` bound what a wheel may inflate to, when published and when rescanned.
    """

    def __init__(
        self,
        layout: DataLayout,
        *,
        max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        stored_copies: bool = True,
        inflate_limits: InflateLimits | None = None,
    ) -> None:
        self.layout = layout
        self.max_upload_bytes = max_upload_bytes
        self.inflate_limits = inflate_limits or InflateLimits()
        self.stored_copies = stored_copies
        for folder in (layout.tree, layout.tmp, layout.locks, layout.cache / "simple"):
            folder.mkdir(parents=True, exist_ok=True)
        for name in ("keys", "alpine", "simple", "files"):
            (layout.tree / name).mkdir(exist_ok=True)
        self._lock_path = layout.locks / "publish.lock"

    # -- temp files -------------------------------------------------------------------

    def new_temp_file(self) -> tuple[int, Path]:
        """Create an empty private temp file on the tree's filesystem; return (fd, path)."""
        handle, name = tempfile.mkstemp(dir=self.layout.tmp, prefix="upload-", suffix=".part")
        # Held while the file is open: a cleaner (leftovers.py) sees a live writer.
        lock_open_file(handle)
        return handle, Path(name)

    def stage_copy(self, source: Path) -> Path:
        """Copy a local file into a temp file of the store (for the CLI and the farm).

        Raises:
            StorageFullError: the store's disk filled up during the copy (nothing is kept).
        """
        try:
            handle, temp = self.new_temp_file()
        except OSError as error:
            if error.errno in NO_SPACE:
                raise storage_error(error, source.name) from error
            raise
        try:
            with os.fdopen(handle, "wb") as target, source.open("rb") as stream:
                shutil.copyfileobj(stream, target, _CHUNK)
        except BaseException as error:
            temp.unlink(missing_ok=True)
            if isinstance(error, OSError) and error.errno in NO_SPACE:
                raise storage_error(error, source.name) from error
            raise
        return temp

    # -- publishing -------------------------------------------------------------------

    def publish_file(
        self,
        source: Path,
        *,
        filename: str | None = None,
        branch: str | None = None,
        repo: str | None = None,
        arch: str | None = None,
        force: bool = False,
        extend_release: bool = True,
    ) -> PublishResult:
        """Publish a local file (copied first; ``source`` is left alone). See ``publish``.

        This is the maintainer's path (``mirror``, the farm): a wheel is published under
        its canonical name (``Jinja2-3.1.2-...`` as ``jinja2-3.1.2-...``), and by default
        it may add a file to a release that has files (another platform, a build-tagged
        variant); replacing different bytes still needs ``force``.

        Raises:
            ValidationError, ConflictError, TooLargeError, ConfigurationError: as ``publish``.
        """
        if filename is None:
            filename = source.name
            if filename.endswith(".whl"):
                filename = canonical_wheel_filename(filename)
        temp = self.stage_copy(source)
        return self.publish(
            temp,
            filename,
            branch=branch,
            repo=repo,
            arch=arch,
            force=force,
            extend_release=extend_release,
        )

    def publish(
        self,
        temp: Path,
        filename: str,
        *,
        sha256: str | None = None,
        branch: str | None = None,
        repo: str | None = None,
        arch: str | None = None,
        force: bool = False,
        extend_release: bool = False,
    ) -> PublishResult:
        """Validate the staged file ``temp`` and make it visible as ``filename``.

        This is the one publish path of every upload API: nothing is written before the
        file passed every check.

        ``temp`` must be a file from ``new_temp_file``/``stage_copy``; it is consumed
        (renamed into the tree or deleted) whatever happens. Wheels go to
        ``files/<project>/`` with a PEP 658 ``.metadata`` file (and a ``.stored`` copy
        when ``stored_copies`` is on), and the project's simple pages are rewritten;
        apks go to ``alpine/<branch>/<repo>/<arch>/`` and that APKINDEX.tar.gz is
        re-signed. Publishing the same bytes again is a no-op. A wheel's name must be
        canonical, and a release (project and version) that has files takes a new file
        only with ``extend_release`` (the force scope of a token).

        Raises:
            ValidationError: bad name, bad content or bad target (nothing is published).
            TooLargeError: the file exceeds the size limit.
            StorageFullError: the disk filled up while the file was being placed.
            ConflictError: a different file has this name and ``force`` is false, or the
                wheel's release has other files and ``extend_release`` is false.
            ConfigurationError: no signing key (apks only).
        """
        try:
            with _owning(temp):
                return self._publish(temp, filename, sha256, branch, repo, arch, force,
                                     extend_release)
        except OSError as error:
            if error.errno not in NO_SPACE:
                raise
            # The metadata, stored copy or pages found the disk full: a 507 that says so.
            raise storage_error(error, filename) from None
        finally:
            temp.unlink(missing_ok=True)

    def _publish(
        self,
        temp: Path,
        filename: str,
        sha256: str | None,
        branch: str | None,
        repo: str | None,
        arch: str | None,
        force: bool,
        extend_release: bool,
    ) -> PublishResult:
        check_filename(filename)
        size = temp.stat().st_size
        if size > self.max_upload_bytes:
            raise TooLargeError(
                f"{filename} is {size} bytes, over the limit of {self.max_upload_bytes}",
                hint="raise the server's --max-upload size",
            )
        digest = sha256 or sha256_file(temp)
        if filename.endswith(".whl"):
            return publish_wheel(
                self, temp, filename, digest, size, force=force, extend_release=extend_release
            )
        if is_sdist_name(filename):
            return publish_sdist(
                self, temp, filename, digest, size, force=force, extend_release=extend_release
            )
        check_target(branch or "v3.22", repo or "sci", arch)
        return publish_apk(
            self,
            temp,
            filename,
            digest,
            size,
            branch=branch or "v3.22",
            repo=repo or "sci",
            arch=arch,
            force=force,
        )

    def lock(self) -> Any:
        """Return the publish lock; hold it while changing anything in the tree."""
        return file_lock(self._lock_path)

    def claim(self, target: Path, digest: str, *, force: bool) -> str:
        """Decide what publishing ``digest`` as ``target`` means (caller holds the lock).

        Returns ``created``, ``unchanged`` (same bytes already there) or ``replaced``.

        Raises:
            ConflictError: ``target`` holds different bytes and ``force`` is false.
        """
        if not target.exists():
            return "created"
        if sha256_file(target) == digest:
            return "unchanged"
        if not force:
            raise ConflictError(
                f"a different file named {target.name} is already published",
                hint="publish under a new version, or pass force=1 to replace it",
            )
        return "replaced"

    @staticmethod
    def place(temp: Path, target: Path) -> None:
        """Rename the staged ``temp`` onto ``target``, world-readable (caller holds the lock)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(temp, 0o644)
        os.replace(temp, target)

    def place_beside(
        self, temp: Path, target: Path, beside: Mapping[str, bytes], *, new: bool
    ) -> None:
        """Write the ``beside`` files, then ``place`` ``temp`` (caller holds the lock).

        If that fails (a full disk), a ``new`` file leaves nothing: what was written
        beside it goes, and so does the folder if it was made for it.
        """
        folder = target.parent
        made_folder = not folder.exists()
        written: list[Path] = []
        try:
            for name, data in beside.items():
                write_atomic(folder / name, data)
                written.append(folder / name)
            self.place(temp, target)
        except BaseException:
            if new:
                for path in written:
                    path.unlink(missing_ok=True)
                if made_folder and folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise

    # -- repair and listing ---------------------------------------------------------------

    def rebuild(
        self, *, progress: Progress | None = None, warnings: list[str] | None = None
    ) -> list[str]:
        """Re-hash every file and rebuild every simple page and APKINDEX.

        Files in the tree that fail validation are left out of the indexes; the
        returned list describes each of them. Every wheel's ``.stored`` copy is made
        again (or, with ``stored_copies`` off, deleted); a copy that cannot be written is
        described in ``warnings`` and its wheel is listed without it. A project whose
        wheels were all removed loses its pages and its wheels' copies.

        Raises:
            ConfigurationError: apks are present but there is no signing key.
        """
        # Folders without wheels too: their pages and leftover copies go.
        names = project_folders(self)
        directories = apk_directories(self)
        total = len(names) + len(directories)
        skipped: list[str] = []
        done = 0
        with self.lock():
            for project in names:
                regenerate_project(
                    self, project, rehash=True, skipped=skipped, warnings=warnings
                )
                done += 1
                if progress:
                    progress(done, total, f"simple/{project}/")
            regenerate_root(self)
            for directory in directories:
                regenerate_apk_index(self, directory, rehash=True, skipped=skipped)
                done += 1
                if progress:
                    progress(done, total, str(directory.relative_to(self.layout.tree)) + "/")
        return skipped

    def listing(self) -> dict[str, Any]:
        """Return every published wheel (by project) and apk (by target) as JSON-ready data."""
        return {"wheels": wheel_listing(self), "apks": apk_listing(self)}
