"""One project's listing: the facts of its files, cached, and the two pages that list them.

The cache (``<state>/cache/simple/<project>.json``) is only a speed-up: an entry counts
only while its file's size and mtime match, so it can always be rebuilt from the tree.
A publish hands down the facts it established (``known``), so the file it just checked is
not checked or hashed again; every other file of the project is taken from the cache, or
checked like an upload when it is new or changed (a file dropped into the tree by hand
cannot slip onto a page).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import jsonsafe
from ..errors import StoredCopyError, ValidationError
from ..fileops import sha256_file, write_atomic
from ..validation.sdist import SdistFacts, inspect_sdist, is_sdist_name
from ..validation.wheel import WheelFacts, inspect_wheel
from ..validation.wheel_archive import InflateLimits
from .layout import DataLayout
from .pages import Project, WheelFile, render_project_html, render_project_json
from .project_index import distribution_files
from .stored_copy import STORED_SUFFIX, copy_outline, stored_copy_path, write_stored_copy
from .variants import has_optimized_variant
from .yank_marks import YankMarks

Entry = dict[str, Any]
STORED_KEYS = ("stored_sha256", "stored_size", "stored_outline_sha256")


def wheel_entry(facts: WheelFacts, sha256: str, size: int) -> Entry:
    """Return the cache entry of a checked wheel, before its file's time is known."""
    return {
        "version": facts.version,
        "sha256": sha256,
        "size": size,
        "metadata_sha256": hashlib.sha256(facts.metadata).hexdigest(),
        "requires_python": facts.requires_python,
    }


def sdist_entry(facts: SdistFacts, sha256: str, size: int) -> Entry:
    """Return the cache entry of a checked sdist (no PEP 658 metadata), before its time."""
    return {
        "version": facts.version,
        "sha256": sha256,
        "size": size,
        "metadata_sha256": None,
        "requires_python": facts.requires_python,
    }


def _timed(name: str, entry: Entry, mtime_ns: int) -> Entry:
    """Return ``entry`` with the file's mtime and its upload time (PEP 700) from it."""
    if is_sdist_name(name):
        uploaded = datetime.fromtimestamp(mtime_ns / 1e9, UTC).replace(microsecond=0)
    else:
        # The mtime is the upload time (the mirror sets upstream's); integers keep its
        # microseconds.
        uploaded = datetime.fromtimestamp(mtime_ns // 10**9, UTC).replace(
            microsecond=mtime_ns // 1000 % 10**6
        )
    return {
        "version": entry["version"],
        "sha256": entry["sha256"],
        "size": entry["size"],
        "mtime_ns": mtime_ns,
        "metadata_sha256": entry["metadata_sha256"],
        "requires_python": entry["requires_python"],
        "upload_time": uploaded.isoformat().replace("+00:00", "Z"),
    }


@dataclass(frozen=True)
class ProjectScan:
    """What a scan found: the files the pages list, and whether the folder holds any file.

    ``had_entries`` tells whether the cache listed files before the scan; ``has_files``
    whether the folder holds a wheel or sdist now (valid or not: the root lists it).
    """

    files: tuple[WheelFile, ...]
    had_entries: bool
    has_files: bool


class ProjectListing:
    """Scans projects' folders with a cache, makes stored copies, writes the project pages."""

    def __init__(
        self,
        layout: DataLayout,
        *,
        stored_copies: bool,
        inflate_limits: InflateLimits,
        marks: YankMarks,
    ) -> None:
        self._files = layout.tree / "files"
        self._simple = layout.tree / "simple"
        self._cache = layout.cache / "simple"
        self.stored_copies = stored_copies
        self.inflate_limits = inflate_limits
        self.marks = marks

    def cached(self, project: str) -> dict[str, Entry]:
        """Return the project's cached entries by file name (empty when there is no cache)."""
        try:
            document = jsonsafe.loads((self._cache / f"{project}.json").read_bytes())
        except (FileNotFoundError, jsonsafe.JsonInputError):
            return {}
        return document if isinstance(document, dict) else {}

    def lacks_outlines(self, project: str) -> bool:
        """Tell whether the cache lists a stored copy without its outline (an older store)."""
        return any(
            isinstance(entry, dict)
            and entry.get("stored_sha256")
            and "stored_outline_sha256" not in entry
            for entry in self.cached(project).values()
        )

    def cached_sha256(self, project: str, path: Path) -> str | None:
        """Return the sha256 the cache holds for ``path``, if its size and mtime still match."""
        entry = self.cached(project).get(path.name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        if not entry or (entry.get("size"), entry.get("mtime_ns")) != (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            return None
        sha256 = entry.get("sha256")
        return sha256 if isinstance(sha256, str) else None

    def scan(
        self,
        project: str,
        *,
        rehash: bool = False,
        skipped: list[str] | None = None,
        warnings: list[str] | None = None,
        known: Mapping[str, Entry] | None = None,
    ) -> ProjectScan:
        """Return the project's listed files, reusing cached facts for unchanged files.

        ``known`` holds entries (``wheel_entry``, ``sdist_entry``) of files checked just
        now, by name; one counts while its size matches the file. A file in the tree that
        is not a valid wheel or sdist is left out and described in ``skipped``. With
        ``stored_copies`` on, each wheel's ``.stored`` copy is made here when it is missing
        or older than the wheel (none for a wheel beside its optimized variant, see
        ``variants.py``); one that cannot be written is described in ``warnings`` and the
        wheel is listed without it. ``.stored`` files that no listed wheel vouches for are
        deleted, so none outlives its wheel.
        """
        folder = self._files / project
        previous = self.cached(project)
        cache = {} if rehash else previous
        fresh: dict[str, Entry] = {}
        copy_warnings: list[str] = [] if warnings is None else warnings
        distributions = distribution_files(folder)
        names = {path.name for path in distributions}
        for path in distributions:
            stat = path.stat()
            entry = cache.get(path.name)
            given = (known or {}).get(path.name)
            if given is not None and given["size"] == stat.st_size:
                entry = _timed(path.name, given, stat.st_mtime_ns)
            elif not entry or (entry.get("size"), entry.get("mtime_ns")) != (
                stat.st_size,
                stat.st_mtime_ns,
            ):
                try:
                    entry = self._facts(path, stat.st_size, stat.st_mtime_ns)
                except ValidationError as error:
                    if skipped is not None:
                        skipped.append(f"files/{project}/{path.name}: {error.message}")
                    continue
            # A mirror's upstream file needs no copy: ipydeps installs its optimized variant.
            if (
                self.stored_copies
                and not is_sdist_name(path.name)
                and not has_optimized_variant(path.name, names)
            ):
                entry = _with_stored_copy(path, entry, copy_warnings)
            else:
                entry = {key: value for key, value in entry.items() if key not in STORED_KEYS}
            fresh[path.name] = entry
        if folder.is_dir():
            _remove_unlisted_copies(folder, fresh)
        write_atomic(self._cache / f"{project}.json", json.dumps(fresh, indent=1).encode(), 0o600)
        yanks = self.marks.load(project)
        files = tuple(
            WheelFile(
                filename=name,
                url=f"../../files/{project}/{name}",
                version=entry["version"],
                sha256=entry["sha256"],
                size=entry["size"],
                metadata_sha256=entry.get("metadata_sha256"),
                requires_python=entry.get("requires_python"),
                upload_time=entry.get("upload_time"),
                stored_sha256=entry.get("stored_sha256"),
                stored_size=entry.get("stored_size"),
                stored_outline_sha256=entry.get("stored_outline_sha256"),
                yanked=yanks.get(name),
            )
            for name, entry in fresh.items()
        )
        return ProjectScan(files=files, had_entries=bool(previous), has_files=bool(distributions))

    def write_pages(self, project: str, files: tuple[WheelFile, ...]) -> None:
        """Rewrite ``simple/<project>/index.{html,json}`` listing ``files`` (none: they go)."""
        folder = self._simple / project
        if not files:
            for name in ("index.html", "index.json"):
                (folder / name).unlink(missing_ok=True)
            return
        page = Project(name=project, files=files)
        write_atomic(folder / "index.html", render_project_html(page).encode())
        write_atomic(folder / "index.json", render_project_json(page).encode())

    def entries(self, project: str) -> list[dict[str, Any]]:
        """Return the project's files as the packages API lists them (from the cache).

        ``stored_sha256``, ``stored_size`` and ``stored_outline_sha256`` describe the
        wheel's ``.stored`` copy (at ``url`` + ``.stored``), or are null when it has none
        (the outline alone is null for a copy that has none, see ``stored_copy.py``).
        """
        yanks = self.marks.load(project)
        return [
            {
                "filename": name,
                "version": entry.get("version"),
                "sha256": entry.get("sha256"),
                "size": entry.get("size"),
                "url": f"files/{project}/{name}",
                "stored_sha256": entry.get("stored_sha256"),
                "stored_size": entry.get("stored_size"),
                "stored_outline_sha256": entry.get("stored_outline_sha256"),
                "yanked": yanks.get(name),
            }
            for name, entry in sorted(self.cached(project).items())
        ]

    def _facts(self, path: Path, size: int, mtime_ns: int) -> Entry:
        """Check a file found in the tree like an upload and return its entry.

        Raises:
            ValidationError: the file is not a valid wheel or sdist.
        """
        if is_sdist_name(path.name):
            sdist = inspect_sdist(path, path.name, self.inflate_limits)
            return _timed(path.name, sdist_entry(sdist, sha256_file(path), size), mtime_ns)
        wheel = inspect_wheel(path, path.name, self.inflate_limits)
        metadata_path = path.with_name(path.name + ".metadata")
        if not metadata_path.exists() or metadata_path.read_bytes() != wheel.metadata:
            write_atomic(metadata_path, wheel.metadata)
        return _timed(path.name, wheel_entry(wheel, sha256_file(path), size), mtime_ns)


def _with_stored_copy(path: Path, entry: Entry, warnings: list[str]) -> Entry:
    """Return ``entry`` with the facts of a current ``.stored`` copy, made if needed.

    An entry without them (just computed, from an older version, or a failed copy) or
    whose copy is gone gets a new copy, so upgrading a store fills them in at the next scan.
    An entry from before outlines (no ``stored_outline_sha256`` key) gets its copy's
    outline, computed once from the copy as it is, see ``_with_outline``.
    """
    copy_path = stored_copy_path(path)
    if (
        entry.get("stored_sha256")
        and copy_path.is_file()
        and copy_path.stat().st_size == entry.get("stored_size")
    ):
        if "stored_outline_sha256" in entry:
            return entry
        described = _with_outline(copy_path, entry)
        if described is not None:
            return described
    bare = {key: value for key, value in entry.items() if key not in STORED_KEYS}
    try:
        copy = write_stored_copy(path)
    except StoredCopyError as error:
        warnings.append(f"files/{path.parent.name}/{error.message}")
        return bare
    return {
        **bare,
        "stored_sha256": copy.sha256,
        "stored_size": copy.size,
        "stored_outline_sha256": copy.outline_sha256,
    }


def _with_outline(copy_path: Path, entry: Entry) -> Entry | None:
    """Return ``entry`` with the outline of the copy it lists; None to make the copy again.

    The outline vouches for the copy in place of its sha256, so it is computed only from
    a copy that still has the sha256 the entry lists: a copy changed on disk since then
    is made again (None) rather than outlined as it is now.
    """
    try:
        if sha256_file(copy_path) != entry["stored_sha256"]:
            return None
        outline = copy_outline(copy_path)
    except OSError:
        return None
    return {**entry, "stored_outline_sha256": outline}


def _remove_unlisted_copies(folder: Path, fresh: dict[str, Entry]) -> None:
    """Delete the ``.stored`` files that no entry of ``fresh`` vouches for.

    Those are copies of removed, replaced or invalid wheels, a copy that could not be
    remade after its wheel changed, or every copy once copies are turned off.
    """
    for copy_path in folder.glob(f"*.whl{STORED_SUFFIX}"):
        wheel_name = copy_path.name.removesuffix(STORED_SUFFIX)
        if copy_path.is_file() and not fresh.get(wheel_name, {}).get("stored_sha256"):
            copy_path.unlink()
