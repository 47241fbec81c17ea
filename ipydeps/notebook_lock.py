"""Which notebook this kernel runs, where its lock lies, and recording an install in it.

jupyter-server tells a kernel its notebook in ``JPY_SESSION_NAME``: an absolute path when
the front end (JupyterLab) sent the session a name, else the notebook's path relative to
the server's root, whose folder is the kernel's working directory. Consoles and other
sessions that are not ``.ipynb`` notebooks get no lock.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .formats.wire import SIMPLE_PATH
from .index import project_for_apk
from .installers.transaction import InstalledWheel
from .lockfile import (
    LockedApk,
    LockedFile,
    LockedPackage,
    LockFileError,
    NotebookLock,
    lock_path_for,
    merge_lock,
    parse_lock,
    render_lock,
)
from .models import Candidate, Route, Step
from .settings import Settings

if TYPE_CHECKING:
    from .apkclosure import ApkAddition

__all__ = ["SESSION_VARIABLE", "notebook_path", "read_lock", "record_install", "write_lock"]

SESSION_VARIABLE = "JPY_SESSION_NAME"
# The kernel starts in the notebook's folder; a cell may chdir later. The extension imports
# this module at kernel start (through ipydeps.api), so this is the folder it started in.
_START_FOLDER = Path.cwd()
# Far above any real lock (a few hundred bytes per package).
MAX_LOCK_BYTES = 16 << 20
_log = logging.getLogger(__name__)


def notebook_path(environ: Mapping[str, str], cwd: Path | None = None) -> Path | None:
    """Return the notebook this kernel was started for, if it is one that exists; else None."""
    name = environ.get(SESSION_VARIABLE, "").strip()
    if not name.endswith(".ipynb"):
        return None
    path = Path(name)
    if not path.is_absolute():
        # Relative to the server's root; the kernel runs in the notebook's own folder.
        path = (cwd or _START_FOLDER) / path.name
    return path if path.is_file() else None


def read_lock(path: Path) -> NotebookLock | None:
    """Return the lock at ``path`` (None: there is none); ``LockFileError`` if unreadable."""
    try:
        # Not blocking, and only a regular file: a lock shipped with a notebook could be a
        # FIFO or a device, and it is read while the kernel starts.
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LockFileError(f"{path.name} cannot be read: {error.strerror}") from error
    try:
        facts = os.fstat(handle)
        if not stat.S_ISREG(facts.st_mode):
            raise LockFileError(f"{path.name} is not a regular file")
        if facts.st_size > MAX_LOCK_BYTES:
            raise LockFileError(f"{path.name} is bigger than {MAX_LOCK_BYTES >> 20} MiB")
        with os.fdopen(handle, "rb", closefd=False) as stream:
            text = stream.read(MAX_LOCK_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LockFileError(f"{path.name} cannot be read: {error}") from error
    finally:
        os.close(handle)
    return parse_lock(text, where=path.name)


def write_lock(path: Path, lock: NotebookLock) -> None:
    """Write ``lock`` to ``path`` atomically (a temporary file beside it, then a rename)."""
    text = render_lock(lock)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def record_install(
    steps: Iterable[Step],
    wheels: Iterable[InstalledWheel],
    settings: Settings,
    environ: Mapping[str, str],
    apk_dependencies: Iterable[ApkAddition] = (),
) -> list[str]:
    """Merge what an install put in place into its notebook's lock; return warnings.

    Does nothing outside a notebook. Wheels are PEP 751 packages; apks (the apk steps,
    and ``apk_dependencies``: what apk added for them from our index) go in
    ``[tool.ipydeps] apks``, which only ipydeps reads. A dependency apk took from another
    repository (no index record of ours) is not locked: only apk knew its version. A
    lock that cannot be written is a warning: the install itself succeeded.
    """
    notebook = notebook_path(environ)
    if notebook is None:
        return []
    path = lock_path_for(notebook)
    top_level = {wheel.name: wheel.top_level for wheel in wheels}
    installed = [
        _locked(step.candidate, settings, top_level.get(step.candidate.name, ()))
        for step in steps
        if step.candidate.route is not Route.APK and step.candidate.sha256
    ]
    apks = [
        *(_locked_apk_step(step.candidate) for step in steps if step.candidate.route is Route.APK),
        *(_locked_apk_addition(addition, settings) for addition in apk_dependencies),
    ]
    known_apks = [apk for apk in apks if apk is not None]
    if not installed and not known_apks:
        return []
    try:
        lock = merge_lock(
            read_lock(path),
            installed,
            repository=_public(settings.repository_url or "") or None,
            apks=known_apks,
        )
        write_lock(path, lock)
    except (LockFileError, OSError) as error:
        return [f"{path.name} was not updated: {error}"]
    _log.debug("recorded %d package(s), %d apk(s) in %s", len(installed), len(known_apks), path)
    return []


def _locked_apk_step(candidate: Candidate) -> LockedApk | None:
    """Lock the apk of an apk step; its URL is ``<repository>/<arch>/<file>`` (index.py)."""
    if not (candidate.apk_name and candidate.apk_version and candidate.apk_checksum):
        return None
    repository, arch, _file = _public(candidate.url).rsplit("/", 2)
    return LockedApk(
        candidate.apk_name,
        candidate.apk_version,
        candidate.apk_checksum,
        repository,
        arch,
        _installed_top_level(candidate.name),
    )


def _locked_apk_addition(addition: ApkAddition, settings: Settings) -> LockedApk | None:
    """Lock an apk ``apk add`` pulled in from our index (None: from another repository)."""
    record = addition.record
    if record is None or not record.checksum or not addition.location:
        return None
    project = project_for_apk(record.name, settings.apk_map)
    return LockedApk(
        record.name,
        record.version,
        record.checksum,
        _public(addition.location),
        record.arch,
        _installed_top_level(project) if project else (),
    )


def _installed_top_level(project: str) -> tuple[str, ...]:
    """Return the importable names of ``project`` as apk installed it (a restore's waits)."""
    import importlib.metadata  # only here: 6 ms of start-up for every other install

    try:
        distribution = importlib.metadata.distribution(project)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return ()
    listed = distribution.read_text("top_level.txt")
    if listed:
        names = {line.strip() for line in listed.splitlines()}
    else:
        names = {
            file.parts[0].removesuffix(".py")
            for file in distribution.files or ()
            if not file.parts[0].endswith((".dist-info", ".data")) and file.parts[0] != ".."
        }
    return tuple(sorted(name for name in names if name.isidentifier()))


def _locked(candidate: Candidate, settings: Settings, top_level: tuple[str, ...]) -> LockedPackage:
    assert candidate.sha256 is not None  # filtered by the caller
    index = (
        f"{settings.repository_url.rstrip('/')}/{SIMPLE_PATH}/"
        if candidate.route is Route.WHEEL and settings.repository_url
        else settings.upstream_url
    )
    wheel = LockedFile(candidate.filename, _public(candidate.url), candidate.sha256, candidate.size)
    stored = candidate.stored
    copies = (
        (LockedFile(_file_name(stored.url), _public(stored.url), stored.sha256, stored.size),)
        if stored
        else ()
    )
    return LockedPackage(
        candidate.name, str(candidate.version), _public(index), (wheel,), top_level, copies
    )


def _file_name(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


def _public(url: str) -> str:
    """``url`` without credentials: a lock is shared with the notebook."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
