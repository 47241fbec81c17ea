"""Wheels in the tree: publish one with its PEP 658 metadata, and regenerate the simple pages."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from .. import jsonsafe
from ..errors import ConflictError, StoredCopyError, ValidationError
from ..fileops import PublishResult, sha256_file, write_atomic
from ..upstream.optimize import has_optimized_variant
from ..validation.names import check_canonical_wheel_filename, inspect_wheel
from ..validation.sdist import SDIST_SUFFIXES, inspect_sdist, is_sdist_name
from .pages import (
    Project,
    WheelFile,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from .stored_copy import STORED_SUFFIX, stored_copy_path, write_stored_copy
from .yank_marks import load_marks

if TYPE_CHECKING:
    from .store import Store

logger = logging.getLogger(__name__)
_STORED_KEYS = ("stored_sha256", "stored_size")


def publish_wheel(
    store: Store,
    temp: Path,
    filename: str,
    digest: str,
    size: int,
    *,
    force: bool,
    extend_release: bool = False,
) -> PublishResult:
    """Validate a staged wheel and publish it to ``files/<project>/`` with its ``.metadata``.

    The file name must be canonical (``check_canonical_wheel_filename``). A release that
    has files is immutable: a new file for it (another tag, a build tag) needs
    ``extend_release``, and different bytes under a published name need ``force``.
    With ``store.stored_copies`` on, its ``.stored`` copy is (re)made before the pages
    that list it. A copy that cannot be written does not stop the publish: the wheel is
    listed without it, and the problem is logged and returned in ``warnings``.

    Raises:
        ValidationError: the wheel is invalid (nothing is published).
        ConflictError: a different file of that name exists and ``force`` is false, or
            the release has other files and ``extend_release`` is false.
    """
    check_canonical_wheel_filename(filename)
    facts = inspect_wheel(temp, filename, store.inflate_limits)
    return place_in_release(
        store, temp, filename, digest, size, kind="wheel", project=facts.project,
        version=facts.version, force=force, extend_release=extend_release,
        # PEP 658 metadata first, so a listed wheel always has its .metadata.
        beside={f"{filename}.metadata": facts.metadata},
    )


def place_in_release(
    store: Store,
    temp: Path,
    filename: str,
    digest: str,
    size: int,
    *,
    kind: str,
    project: str,
    version: str,
    force: bool,
    extend_release: bool,
    beside: Mapping[str, bytes] | None = None,
) -> PublishResult:
    """Make a validated distribution visible in ``files/<project>/`` and relist the project.

    Under the store's lock: the name is claimed (different bytes need ``force``), a new
    file of a release that has files needs ``extend_release``, the ``beside`` files are
    written before the distribution itself, and the project's pages are rewritten.

    Raises:
        ConflictError: as ``Store.claim`` and ``check_release_closed`` raise it.
    """
    folder = store.layout.tree / "files" / project
    target = folder / filename
    warnings: list[str] = []
    with store.lock():
        status = store.claim(target, digest, force=force)
        if status == "created" and not extend_release:
            check_release_closed(folder, project, version)
        if status != "unchanged":
            store.place_beside(temp, target, beside or {}, new=status == "created")
        regenerate_project(store, project, warnings=warnings)
    for warning in warnings:
        logger.warning("%s", warning)
    return PublishResult(
        kind=kind,
        filename=filename,
        path=f"files/{project}/{filename}",
        sha256=digest,
        size=size,
        status=status,
        name=project,
        version=version,
        warnings=tuple(warnings),
    )


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


def projects(store: Store) -> list[str]:
    """Return the normalized names of all projects with at least one wheel or sdist."""
    files = store.layout.tree / "files"
    return [name for name in project_folders(store) if _distributions(files / name)]


def project_folders(store: Store) -> list[str]:
    """Return every folder under ``files/``, also those whose last wheel was removed."""
    files = store.layout.tree / "files"
    return sorted(
        entry.name for entry in files.iterdir() if entry.is_dir() and not entry.name.startswith(".")
    )


def _cache_path(store: Store, project: str) -> Path:
    return store.layout.cache / "simple" / f"{project}.json"


def _load_cache(store: Store, project: str) -> dict[str, dict[str, Any]]:
    try:
        document = jsonsafe.loads(_cache_path(store, project).read_bytes())
    except (FileNotFoundError, jsonsafe.JsonInputError):
        return {}
    return document if isinstance(document, dict) else {}


def _distributions(folder: Path) -> list[Path]:
    """Return the wheels and sdists in ``folder`` (no hidden temp files), sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(
        path
        for pattern in ("*.whl", *(f"*{suffix}" for suffix in SDIST_SUFFIXES))
        for path in folder.glob(pattern)
        if not path.name.startswith(".")
    )


def _sdist_facts(store: Store, path: Path, size: int, mtime_ns: int) -> dict[str, Any]:
    facts = inspect_sdist(path, path.name, store.inflate_limits)
    uploaded = datetime.fromtimestamp(mtime_ns / 1e9, UTC).replace(microsecond=0)
    return {
        "version": facts.version,
        "sha256": sha256_file(path),
        "size": size,
        "mtime_ns": mtime_ns,
        "metadata_sha256": None,
        "requires_python": facts.requires_python,
        "upload_time": uploaded.isoformat().replace("+00:00", "Z"),
    }


def _wheel_facts(store: Store, path: Path, size: int, mtime_ns: int) -> dict[str, Any]:
    if is_sdist_name(path.name):
        return _sdist_facts(store, path, size, mtime_ns)
    facts = inspect_wheel(path, path.name, store.inflate_limits)
    metadata_path = path.with_name(path.name + ".metadata")
    if not metadata_path.exists() or metadata_path.read_bytes() != facts.metadata:
        write_atomic(metadata_path, facts.metadata)
    # The mtime is the upload time (the mirror sets upstream's); integers keep its microseconds.
    uploaded = datetime.fromtimestamp(mtime_ns // 10**9, UTC).replace(
        microsecond=mtime_ns // 1000 % 10**6
    )
    return {
        "version": facts.version,
        "sha256": sha256_file(path),
        "size": size,
        "mtime_ns": mtime_ns,
        "metadata_sha256": hashlib.sha256(facts.metadata).hexdigest(),
        "requires_python": facts.requires_python,
        "upload_time": uploaded.isoformat().replace("+00:00", "Z"),
    }


def _with_stored_copy(path: Path, entry: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """Return ``entry`` with the facts of a current ``.stored`` copy, made if needed.

    An entry without them (just computed, from an older version, or a failed copy) or
    whose copy is gone gets a new copy, so upgrading a store fills them in at the next scan.
    """
    copy_path = stored_copy_path(path)
    if (
        entry.get("stored_sha256")
        and copy_path.is_file()
        and copy_path.stat().st_size == entry.get("stored_size")
    ):
        return entry
    bare = {key: value for key, value in entry.items() if key not in _STORED_KEYS}
    try:
        copy = write_stored_copy(path)
    except StoredCopyError as error:
        warnings.append(f"files/{path.parent.name}/{error.message}")
        return bare
    return {**bare, "stored_sha256": copy.sha256, "stored_size": copy.size}


def _remove_unlisted_copies(folder: Path, fresh: dict[str, dict[str, Any]]) -> None:
    """Delete the ``.stored`` files that no entry of ``fresh`` vouches for.

    Those are copies of removed, replaced or invalid wheels, a copy that could not be
    remade after its wheel changed, or every copy once copies are turned off.
    """
    for copy_path in folder.glob(f"*.whl{STORED_SUFFIX}"):
        wheel_name = copy_path.name.removesuffix(STORED_SUFFIX)
        if copy_path.is_file() and not fresh.get(wheel_name, {}).get("stored_sha256"):
            copy_path.unlink()


def scan_project(
    store: Store,
    project: str,
    *,
    rehash: bool = False,
    skipped: list[str] | None = None,
    warnings: list[str] | None = None,
) -> list[WheelFile]:
    """Return the project's wheels, reusing cached facts for unchanged files.

    The cache (``<state>/cache/simple/<project>.json``) is only a speed-up: an entry
    counts only while size and mtime match, so it can always be rebuilt from the tree.
    A file in the tree that is not a valid wheel is left out and described in ``skipped``.
    With ``store.stored_copies`` on, each wheel's ``.stored`` copy is made here when it is
    missing or older than the wheel (none for a wheel beside its optimized variant, see
    ``optimize.py``); one that cannot be written is described in ``warnings`` and the
    wheel is listed without it. ``.stored`` files that no listed wheel vouches for are
    deleted, so none outlives its wheel.
    """
    folder = store.layout.tree / "files" / project
    cache = {} if rehash else _load_cache(store, project)
    fresh: dict[str, dict[str, Any]] = {}
    copy_warnings: list[str] = [] if warnings is None else warnings
    distributions = _distributions(folder)
    names = {path.name for path in distributions}
    for path in distributions:
        stat = path.stat()
        entry = cache.get(path.name)
        if not entry or (entry.get("size"), entry.get("mtime_ns")) != (
            stat.st_size,
            stat.st_mtime_ns,
        ):
            try:
                entry = _wheel_facts(store, path, stat.st_size, stat.st_mtime_ns)
            except ValidationError as error:
                if skipped is not None:
                    skipped.append(f"files/{project}/{path.name}: {error.message}")
                continue
        # A mirror's upstream file needs no copy: ipydeps installs its optimized variant.
        if (store.stored_copies and not is_sdist_name(path.name)
                and not has_optimized_variant(path.name, names)):
            entry = _with_stored_copy(path, entry, copy_warnings)
        else:
            entry = {key: value for key, value in entry.items() if key not in _STORED_KEYS}
        fresh[path.name] = entry
    if folder.is_dir():
        _remove_unlisted_copies(folder, fresh)
    write_atomic(_cache_path(store, project), json.dumps(fresh, indent=1).encode(), 0o600)
    yanks = load_marks(store, project)
    return [
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
            yanked=yanks.get(name),
        )
        for name, entry in fresh.items()
    ]


def regenerate_project(
    store: Store,
    project: str,
    *,
    rehash: bool = False,
    skipped: list[str] | None = None,
    warnings: list[str] | None = None,
) -> None:
    """Rewrite ``simple/<project>/index.{html,json}`` and the root pages.

    The caller holds the publish lock. Files the pages point to (wheels, ``.metadata``,
    ``.stored``) are all written before the pages. ``skipped`` and ``warnings`` are as in
    ``scan_project``.
    """
    project = canonicalize_name(project)
    files = scan_project(store, project, rehash=rehash, skipped=skipped, warnings=warnings)
    folder = store.layout.tree / "simple" / project
    if files:
        page = Project(name=project, files=tuple(files))
        write_atomic(folder / "index.html", render_project_html(page).encode())
        write_atomic(folder / "index.json", render_project_json(page).encode())
    else:
        for name in ("index.html", "index.json"):
            (folder / name).unlink(missing_ok=True)
    regenerate_root(store)


def regenerate_root(store: Store) -> None:
    """Rewrite ``simple/index.html`` and ``simple/index.json`` (caller holds the lock)."""
    names = projects(store)
    simple = store.layout.tree / "simple"
    write_atomic(simple / "index.html", render_root_html(names).encode())
    write_atomic(simple / "index.json", render_root_json(names).encode())


def wheel_listing(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Return every project's wheels (from the cache written with each page).

    ``stored_sha256`` and ``stored_size`` describe the wheel's ``.stored`` copy (at
    ``url`` + ``.stored``), or are null when it has none.
    """
    listing: dict[str, list[dict[str, Any]]] = {}
    for project in projects(store):
        yanks = load_marks(store, project)
        listing[project] = [
            {
                "filename": name,
                "version": entry.get("version"),
                "sha256": entry.get("sha256"),
                "size": entry.get("size"),
                "url": f"files/{project}/{name}",
                "stored_sha256": entry.get("stored_sha256"),
                "stored_size": entry.get("stored_size"),
                "yanked": yanks.get(name),
            }
            for name, entry in sorted(_load_cache(store, project).items())
        ]
    return listing
