"""The store: validates uploads, moves them atomically into the static tree, regenerates indexes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from .errors import ConflictError, TooLargeError
from .locking import file_lock
from .settings import DEFAULT_MAX_UPLOAD_BYTES, DataLayout
from .simple_index import (
    Project,
    WheelFile,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from .validation import check_filename, check_target, inspect_wheel

Progress = Callable[[int, int, str], None]
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class PublishResult:
    """What publishing one file did; ``status`` is created, unchanged or replaced."""

    kind: str
    filename: str
    path: str
    sha256: str
    size: int
    status: str
    name: str
    version: str

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict (the upload API's response body)."""
        return asdict(self)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temp file beside it and ``os.replace``.

    Readers (and a CDN sync) see the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class Store:
    """One data directory: the public tree, private state, and the publish operations on them.

    Several stores (server replicas, the CLI) may share one directory: every change of
    the tree happens under ``<state>/locks/publish.lock``.
    """

    def __init__(
        self, layout: DataLayout, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    ) -> None:
        self.layout = layout
        self.max_upload_bytes = max_upload_bytes
        for folder in (layout.tree, layout.tmp, layout.locks, layout.cache / "simple"):
            folder.mkdir(parents=True, exist_ok=True)
        for name in ("keys", "alpine", "simple", "files"):
            (layout.tree / name).mkdir(exist_ok=True)
        self._lock_path = layout.locks / "publish.lock"

    # -- temp files -------------------------------------------------------------------

    def new_temp_file(self) -> tuple[int, Path]:
        """Create an empty private temp file on the tree's filesystem; return (fd, path)."""
        handle, name = tempfile.mkstemp(dir=self.layout.tmp, prefix="upload-", suffix=".part")
        return handle, Path(name)

    def stage_copy(self, source: Path) -> Path:
        """Copy a local file into a temp file of the store (for the CLI and the farm)."""
        handle, temp = self.new_temp_file()
        try:
            with os.fdopen(handle, "wb") as target, source.open("rb") as stream:
                shutil.copyfileobj(stream, target, _CHUNK)
        except BaseException:
            temp.unlink(missing_ok=True)
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
    ) -> PublishResult:
        """Publish a local file (copied first; ``source`` is left alone). See ``publish``.

        Raises:
            ValidationError, ConflictError, TooLargeError, ConfigurationError: as ``publish``.
        """
        temp = self.stage_copy(source)
        return self.publish(
            temp, filename or source.name, branch=branch, repo=repo, arch=arch, force=force
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
    ) -> PublishResult:
        """Validate the staged file ``temp`` and make it visible as ``filename``.

        ``temp`` must be a file from ``new_temp_file``/``stage_copy``; it is consumed
        (renamed into the tree or deleted) whatever happens. Wheels go to
        ``files/<project>/`` with a PEP 658 ``.metadata`` file, and the project's simple
        pages are rewritten; apks go to ``alpine/<branch>/<repo>/<arch>/`` and that
        APKINDEX.tar.gz is re-signed. Publishing the same bytes again is a no-op.

        Raises:
            ValidationError: bad name, bad content or bad target (nothing is published).
            TooLargeError: the file exceeds the size limit.
            ConflictError: a different file has this name and ``force`` is false.
            ConfigurationError: no signing key (apks only).
        """
        try:
            check_filename(filename)
            size = temp.stat().st_size
            if size > self.max_upload_bytes:
                raise TooLargeError(
                    f"{filename} is {size} bytes, over the limit of {self.max_upload_bytes}",
                    hint="raise the server's --max-upload size",
                )
            digest = sha256 or sha256_file(temp)
            if filename.endswith(".whl"):
                return self._publish_wheel(temp, filename, digest, size, force)
            from .apk_repository import publish_apk

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
        finally:
            temp.unlink(missing_ok=True)

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

    def _publish_wheel(
        self, temp: Path, filename: str, digest: str, size: int, force: bool
    ) -> PublishResult:
        facts = inspect_wheel(temp, filename)
        folder = self.layout.tree / "files" / facts.project
        target = folder / filename
        with self.lock():
            status = self.claim(target, digest, force=force)
            if status != "unchanged":
                # PEP 658 metadata first, so a listed wheel always has its .metadata.
                write_atomic(folder / f"{filename}.metadata", facts.metadata)
                self.place(temp, target)
            self.regenerate_project(facts.project)
        return PublishResult(
            kind="wheel",
            filename=filename,
            path=f"files/{facts.project}/{filename}",
            sha256=digest,
            size=size,
            status=status,
            name=facts.project,
            version=facts.version,
        )

    # -- simple index -------------------------------------------------------------------

    def projects(self) -> list[str]:
        """Return the normalized names of all projects with at least one wheel."""
        files = self.layout.tree / "files"
        return sorted(
            entry.name
            for entry in files.iterdir()
            if entry.is_dir() and not entry.name.startswith(".") and any(entry.glob("*.whl"))
        )

    def _cache_path(self, project: str) -> Path:
        return self.layout.cache / "simple" / f"{project}.json"

    def _load_cache(self, project: str) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self._cache_path(project).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return document if isinstance(document, dict) else {}

    def scan_project(self, project: str, *, rehash: bool = False) -> list[WheelFile]:
        """Return the project's wheels, reusing cached facts for unchanged files.

        The cache (``<state>/cache/simple/<project>.json``) is only a speed-up: an entry
        counts only if size and mtime still match, so it can always be rebuilt from the tree.
        """
        folder = self.layout.tree / "files" / project
        cache = {} if rehash else self._load_cache(project)
        fresh: dict[str, dict[str, Any]] = {}
        for path in sorted(folder.glob("*.whl")) if folder.is_dir() else []:
            if path.name.startswith("."):
                continue
            stat = path.stat()
            entry = cache.get(path.name)
            if (
                not entry
                or entry.get("size") != stat.st_size
                or entry.get("mtime_ns") != stat.st_mtime_ns
            ):
                entry = self._wheel_facts(path, stat.st_size, stat.st_mtime_ns)
            fresh[path.name] = entry
        write_atomic(self._cache_path(project), json.dumps(fresh, indent=1).encode(), 0o600)
        return [
            WheelFile(
                filename=name,
                url=f"../../files/{project}/{name}",
                version=entry["version"],
                sha256=entry["sha256"],
                size=entry["size"],
                metadata_sha256=entry["metadata_sha256"],
                requires_python=entry.get("requires_python"),
                upload_time=entry.get("upload_time"),
            )
            for name, entry in fresh.items()
        ]

    def _wheel_facts(self, path: Path, size: int, mtime_ns: int) -> dict[str, Any]:
        facts = inspect_wheel(path, path.name)
        metadata_path = path.with_name(path.name + ".metadata")
        if not metadata_path.exists() or metadata_path.read_bytes() != facts.metadata:
            write_atomic(metadata_path, facts.metadata)
        return {
            "version": facts.version,
            "sha256": sha256_file(path),
            "size": size,
            "mtime_ns": mtime_ns,
            "metadata_sha256": hashlib.sha256(facts.metadata).hexdigest(),
            "requires_python": facts.requires_python,
            "upload_time": datetime.fromtimestamp(mtime_ns / 1e9, UTC)
            .replace(microsecond=0)
            .isoformat()
            .replace("+00:00", "Z"),
        }

    def regenerate_project(self, project: str, *, rehash: bool = False) -> None:
        """Rewrite ``simple/<project>/index.{html,json}`` and the root pages.

        The caller holds the publish lock.
        """
        project = canonicalize_name(project)
        files = self.scan_project(project, rehash=rehash)
        folder = self.layout.tree / "simple" / project
        if files:
            page = Project(name=project, files=tuple(files))
            write_atomic(folder / "index.html", render_project_html(page).encode())
            write_atomic(folder / "index.json", render_project_json(page).encode())
        else:
            for name in ("index.html", "index.json"):
                (folder / name).unlink(missing_ok=True)
        self.regenerate_root()

    def regenerate_root(self) -> None:
        """Rewrite ``simple/index.html`` and ``simple/index.json`` (caller holds the lock)."""
        projects = self.projects()
        simple = self.layout.tree / "simple"
        write_atomic(simple / "index.html", render_root_html(projects).encode())
        write_atomic(simple / "index.json", render_root_json(projects).encode())

    # -- repair and listing ---------------------------------------------------------------

    def rebuild(self, *, progress: Progress | None = None) -> int:
        """Re-hash every wheel and rebuild every simple page and APKINDEX; return the count.

        Raises:
            ConfigurationError: apks are present but there is no signing key.
        """
        from .apk_repository import apk_directories, regenerate_apk_index

        projects = self.projects()
        directories = apk_directories(self)
        total = len(projects) + len(directories)
        done = 0
        with self.lock():
            for project in projects:
                self.regenerate_project(project, rehash=True)
                done += 1
                if progress:
                    progress(done, total, f"simple/{project}/")
            self.regenerate_root()
            for directory in directories:
                regenerate_apk_index(self, directory, rehash=True)
                done += 1
                if progress:
                    progress(done, total, str(directory.relative_to(self.layout.tree)) + "/")
        return total

    def listing(self) -> dict[str, Any]:
        """Return every published wheel (by project) and apk (by target) as JSON-ready data."""
        from .apk_repository import apk_listing

        wheels: dict[str, list[dict[str, Any]]] = {}
        for project in self.projects():
            cache = self._load_cache(project)
            wheels[project] = [
                {
                    "filename": name,
                    "version": entry.get("version"),
                    "sha256": entry.get("sha256"),
                    "size": entry.get("size"),
                    "url": f"files/{project}/{name}",
                }
                for name, entry in sorted(cache.items())
            ]
        return {"wheels": wheels, "apks": apk_listing(self)}
