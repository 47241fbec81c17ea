"""The store: one data directory, the repositories it owns, and the one publish path.

``Store`` owns a ``DistributionRepository`` (wheels and sdists under ``files/``) and an
``ApkRepository`` (``alpine/``), and calls them; they never call back. A file is hashed
once (while it arrived, or while it was copied in), checked once by its repository, and
the facts the check found go down to the listing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ..errors import TooLargeError
from ..fileops import NO_SPACE, sha256_file, storage_error
from ..validation.names import canonical_wheel_filename, check_filename, check_target
from ..validation.sdist import is_sdist_name
from ..validation.wheel_archive import InflateLimits
from .apks import ApkRepository
from .distributions import DistributionRepository
from .layout import DEFAULT_MAX_UPLOAD_BYTES, DataLayout
from .leftovers import Removed, remove_leftovers
from .locking import file_lock, lock_open_file
from .releases import ReleaseChange, delete_files, set_yanked
from .results import PublishResult, Staged

Progress = Callable[[int, int, str], None]
_CHUNK = 1024 * 1024
DEFAULT_BRANCH = "v3.22"
DEFAULT_REPO = "sci"


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
        self.distributions = DistributionRepository(
            layout, lock=self.lock, stored_copies=stored_copies, inflate_limits=self.inflate_limits
        )
        self.apks = ApkRepository(layout, lock=self.lock)

    def lock(self) -> AbstractContextManager[None]:
        """Return the publish lock; hold it while changing anything in the tree."""
        return file_lock(self._lock_path)

    # -- temp files -------------------------------------------------------------------

    def new_temp_file(self) -> tuple[int, Path]:
        """Create an empty private temp file on the tree's filesystem; return (fd, path)."""
        handle, name = tempfile.mkstemp(dir=self.layout.tmp, prefix="upload-", suffix=".part")
        # Held while the file is open: a cleaner (leftovers.py) sees a live writer.
        lock_open_file(handle)
        return handle, Path(name)

    def stage_copy(self, source: Path) -> Path:
        """Copy a local file into a temp file of the store; return the temp file.

        Raises:
            StorageFullError: as ``stage``.
        """
        return self.stage(source).path

    def stage(self, source: Path) -> Staged:
        """Copy a local file into a temp file of the store, hashing it on the way.

        For the CLI, the mirror and the farm: the copy is what gets published, and its
        sha256 is not read again.

        Raises:
            StorageFullError: the store's disk filled up during the copy (nothing is kept).
        """
        try:
            handle, temp = self.new_temp_file()
        except OSError as error:
            if error.errno in NO_SPACE:
                raise storage_error(error, source.name) from error
            raise
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(handle, "wb") as target, source.open("rb") as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                    size += len(chunk)
        except BaseException as error:
            temp.unlink(missing_ok=True)
            if isinstance(error, OSError) and error.errno in NO_SPACE:
                raise storage_error(error, source.name) from error
            raise
        return Staged(temp, source.name, digest.hexdigest(), size)

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
        staged = self.stage(source)
        return self.publish(
            staged.path,
            filename,
            sha256=staged.sha256,
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

        ``temp`` must be a file from ``new_temp_file``/``stage``; it is consumed
        (renamed into the tree or deleted) whatever happens. ``sha256`` is its hash when
        the caller computed it already (it is hashed here otherwise). Wheels go to
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
                return self._publish(
                    temp, filename, sha256, branch, repo, arch, force, extend_release
                )
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
        staged = Staged(temp, filename, sha256 or sha256_file(temp), size)
        if filename.endswith(".whl"):
            return self.distributions.publish_wheel(
                staged, force=force, extend_release=extend_release
            )
        if is_sdist_name(filename):
            return self.distributions.publish_sdist(
                staged, force=force, extend_release=extend_release
            )
        check_target(branch or DEFAULT_BRANCH, repo or DEFAULT_REPO, arch)
        return self.apks.publish(
            staged,
            branch=branch or DEFAULT_BRANCH,
            repo=repo or DEFAULT_REPO,
            arch=arch,
            force=force,
        )

    # -- releases ---------------------------------------------------------------------

    def set_yanked(
        self,
        project: str,
        version: str,
        *,
        yanked: bool,
        reason: str = "",
        filename: str | None = None,
    ) -> ReleaseChange:
        """Yank (or unyank) a release or one file of it; see ``releases.set_yanked``."""
        return set_yanked(
            self.distributions, project, version, yanked=yanked, reason=reason, filename=filename
        )

    def delete_files(
        self, project: str, version: str, *, filename: str | None = None
    ) -> ReleaseChange:
        """Delete a release's files or one file; see ``releases.delete_files``."""
        return delete_files(self.distributions, project, version, filename=filename)

    # -- repair and listing ---------------------------------------------------------------

    def rebuild(
        self, *, progress: Progress | None = None, warnings: list[str] | None = None
    ) -> list[str]:
        """Re-hash every file and rebuild every simple page and APKINDEX.

        Files in the tree that fail validation are left out of the indexes; the
        returned list describes each of them. Every wheel's ``.stored`` copy is made
        again (or, with ``stored_copies`` off, deleted); a copy that cannot be written is
        described in ``warnings`` and its wheel is listed without it. A project whose
        wheels were all removed loses its pages and its wheels' copies. The root pages
        are written once, at the end.

        Raises:
            ConfigurationError: apks are present but there is no signing key.
        """
        projects = self.distributions.project_folders()
        directories = self.apks.directories()
        total = len(projects) + len(directories)
        skipped: list[str] = []
        done = 0

        def step(what: str) -> None:
            nonlocal done
            done += 1
            if progress:
                progress(done, total, what)

        with self.lock():
            self.distributions.rebuild(projects, skipped=skipped, warnings=warnings, progress=step)
            for directory in directories:
                self.apks.regenerate_index(directory, rehash=True, skipped=skipped)
                step(str(directory.relative_to(self.layout.tree)) + "/")
        return skipped

    def add_outlines(self) -> list[str]:
        """Give the stored copies of an older store their outline sha256, once.

        Returns the projects whose pages were rewritten (none once every copy has it).
        """
        with self.lock():
            return self.distributions.add_outlines()

    def remove_leftovers(self) -> Removed:
        """Remove what killed writers left behind; see ``leftovers.remove_leftovers``."""
        return remove_leftovers(self.layout, self.lock)

    def listing(self) -> dict[str, Any]:
        """Return every published wheel (by project) and apk (by target) as JSON-ready data."""
        return {"wheels": self.distributions.listing_json(), "apks": self.apks.listing_json()}
