"""Wheels and sdists in ``files/<project>/``: publish one, keep releases closed, relist.

A wheel goes with its PEP 658 ``.metadata`` file (and a ``.stored`` copy, ``listing.py``);
an sdist is listed on the same simple pages, with its sha256 and Requires-Python, but with
no PEP 658 metadata (an sdist's PKG-INFO need not match what a build produces) and no
stored copy. The file is checked once, before the lock; what the check found is handed
down to the listing, so nothing is read twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..errors import ConflictError
from ..validation.names import check_canonical_wheel_filename
from ..validation.sdist import inspect_sdist
from ..validation.wheel import inspect_wheel
from ..validation.wheel_archive import InflateLimits
from .claims import claim, place_beside
from .layout import DataLayout
from .listing import Entry, ProjectListing, ProjectScan, sdist_entry, wheel_entry
from .project_index import ProjectIndex, project_folders
from .results import DistributionKind, PublishResult, PublishStatus, Staged
from .yank_marks import YankMarks

logger = logging.getLogger(__name__)
Lock = Callable[[], AbstractContextManager[Any]]


class DistributionRepository:
    """The wheels and sdists of one data directory, their pages and the root pages.

    ``lock`` is the store's publish lock; every change of the tree happens under it.
    """

    def __init__(
        self, layout: DataLayout, *, lock: Lock, stored_copies: bool, inflate_limits: InflateLimits
    ) -> None:
        self.files = layout.tree / "files"
        self.lock = lock
        self.inflate_limits = inflate_limits
        self.marks = YankMarks(layout)
        self.listing = ProjectListing(
            layout, stored_copies=stored_copies, inflate_limits=inflate_limits, marks=self.marks
        )
        self.index = ProjectIndex(layout)

    def publish_wheel(
        self, staged: Staged, *, force: bool, extend_release: bool = False
    ) -> PublishResult:
        """Check a staged wheel and publish it to ``files/<project>/`` with its ``.metadata``.

        The file name must be canonical (``check_canonical_wheel_filename``). A release
        that has files is immutable: a new file for it (another tag, a build tag) needs
        ``extend_release``, and different bytes under a published name need ``force``.
        With stored copies on, its ``.stored`` copy is (re)made before the pages that list
        it. A copy that cannot be written does not stop the publish: the wheel is listed
        without it, and the problem is logged and returned in ``warnings``.

        Raises:
            ValidationError: the wheel is invalid (nothing is published).
            ConflictError: a different file of that name exists and ``force`` is false, or
                the release has other files and ``extend_release`` is false.
        """
        check_canonical_wheel_filename(staged.filename)
        facts = inspect_wheel(staged.path, staged.filename, self.inflate_limits)
        return self._place(
            staged,
            "wheel",
            facts.project,
            facts.version,
            wheel_entry(facts, staged.sha256, staged.size),
            force=force,
            extend_release=extend_release,
            # PEP 658 metadata first, so a listed wheel always has its .metadata.
            beside={f"{staged.filename}.metadata": facts.metadata},
        )

    def publish_sdist(
        self, staged: Staged, *, force: bool, extend_release: bool = False
    ) -> PublishResult:
        """Check a staged sdist and publish it to ``files/<project>/``.

        A release that has files is immutable as for wheels: a new sdist for it needs
        ``extend_release`` (``pip download --no-binary`` would otherwise take a file that a
        token without the force scope slipped into a published release).

        Raises:
            ValidationError: the sdist is invalid (nothing is published).
            ConflictError: as ``publish_wheel``.
        """
        facts = inspect_sdist(staged.path, staged.filename, self.inflate_limits)
        return self._place(
            staged,
            "sdist",
            facts.project,
            facts.version,
            sdist_entry(facts, staged.sha256, staged.size),
            force=force,
            extend_release=extend_release,
        )

    def _place(
        self,
        staged: Staged,
        kind: DistributionKind,
        project: str,
        version: str,
        entry: Entry,
        *,
        force: bool,
        extend_release: bool,
        beside: Mapping[str, bytes] | None = None,
    ) -> PublishResult:
        """Make a checked distribution visible and relist its project (under the lock).

        The name is claimed (different bytes need ``force``), a new file of a release that
        has files needs ``extend_release``, the ``beside`` files are written before the
        distribution itself, and the project's pages are rewritten from ``entry`` and the
        cache.

        Raises:
            ConflictError: as ``claim`` and ``check_release_closed`` raise it.
        """
        folder = self.files / project
        target = folder / staged.filename
        warnings: list[str] = []
        with self.lock():
            status = claim(
                target,
                staged.sha256,
                force=force,
                known_sha256=self.listing.cached_sha256(project, target),
            )
            if status is PublishStatus.CREATED and not extend_release:
                check_release_closed(folder, project, version)
            if status is not PublishStatus.UNCHANGED:
                place_beside(staged.path, target, beside or {}, new=status is PublishStatus.CREATED)
            self.relist(project, warnings=warnings, known={staged.filename: entry})
        for warning in warnings:
            logger.warning("%s", warning)
        return PublishResult(
            kind=kind,
            filename=staged.filename,
            path=f"files/{project}/{staged.filename}",
            sha256=staged.sha256,
            size=staged.size,
            status=status,
            name=project,
            version=version,
            warnings=tuple(warnings),
        )

    def relist(
        self,
        project: str,
        *,
        rehash: bool = False,
        skipped: list[str] | None = None,
        warnings: list[str] | None = None,
        known: Mapping[str, Entry] | None = None,
    ) -> ProjectScan:
        """Rewrite the project's pages, and the root pages if the project came or went.

        The caller holds the lock. Files the pages point to (wheels, ``.metadata``,
        ``.stored``) are all written before the pages. ``skipped``, ``warnings`` and
        ``known`` are as in ``ProjectListing.scan``.
        """
        project = canonicalize_name(project)
        scan = self.listing.scan(
            project, rehash=rehash, skipped=skipped, warnings=warnings, known=known
        )
        self.listing.write_pages(project, scan.files)
        # A project that had files and still has them is listed already: the root is left
        # alone without reading the list of every project.
        if not (scan.had_entries and scan.has_files and self.index.pages_exist()):
            self.index.update(project, listed=scan.has_files)
        return scan

    def add_outlines(self) -> list[str]:
        """Relist each project whose cache lists stored copies without their outline.

        The caller holds the lock. Returns those projects. A store written before outlines
        gets them here once (see ``listing._with_outline``), so its pages carry them
        without waiting for the next publish to each project.
        """
        if not self.listing.stored_copies:
            return []
        outlined = [name for name in self.index.names() if self.listing.lacks_outlines(name)]
        for project in outlined:
            self.relist(project)
        return outlined

    def project_folders(self) -> list[str]:
        """Return every folder under ``files/``, also those whose last file was removed."""
        return project_folders(self.files)

    def rebuild(
        self,
        projects: list[str],
        *,
        skipped: list[str],
        warnings: list[str] | None,
        progress: Callable[[str], None],
    ) -> None:
        """Re-check every file of ``projects``, rewrite their pages, then the root pages once.

        The caller holds the lock. Pass every folder (``project_folders``), also those
        without files: their pages and leftover copies go.
        """
        for project in projects:
            self.listing.write_pages(
                project,
                self.listing.scan(project, rehash=True, skipped=skipped, warnings=warnings).files,
            )
            progress(f"simple/{project}/")
        self.index.rebuild()

    def listing_json(self) -> dict[str, list[dict[str, Any]]]:
        """Return every listed project's files, as the packages API lists them."""
        return {project: self.listing.entries(project) for project in self.index.names()}


def release_files(folder: Path, version: str) -> list[str]:
    """Return the names of the wheels and sdists in ``folder`` that belong to ``version``.

    Every spelling counts (``Six-1.17.0``, ``six-1.17.00``, a build tag): what pip and uv
    would take for that release.
    """
    wanted = Version(version)
    found = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        name = path.name
        try:
            if name.endswith(".whl"):
                found_version = parse_wheel_filename(name)[1]
            elif name.endswith((".tar.gz", ".zip")):
                found_version = parse_sdist_filename(name)[1]
            else:
                continue
        except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
            continue
        if found_version == wanted and not name.startswith("."):
            found.append(name)
    return found


def check_release_closed(folder: Path, project: str, version: str) -> None:
    """Refuse a new file for a release that already has files (caller holds the lock).

    Raises:
        ConflictError: naming the release's files.
    """
    existing = release_files(folder, version)
    if existing:
        raise ConflictError(
            f"{project} {version} is already published ({', '.join(existing)}); a published "
            "release does not take new files",
            hint="publish a new version; adding a file to a release needs a token with the "
            "force scope",
        )
