"""Fill the shared cache (``ipydeps.sharedcache``) with wheels an install just committed.

Only wheels installed from our repository's stored copies are kept, and only once the
install has committed: their bytes were verified against the index on the way in, and
the stager knows each file's sha256 and the copy's outline. For each, every object not
there yet is written, then the outline (a reader looks for the outline first, so it
never finds one whose objects are still being written).

Each file is written to a temporary name in its own directory, then linked to its final
name: the name appears whole or not at all, and a filler that dies leaves only a
``.tmp-`` file, which a later filler removes once it is an hour old. Two fillers of the
same content are harmless: a name is its content's sha256, so the second one's link
finds the name taken and drops its copy. To spare the work, a filler first claims the
entry (``.tmp-claim-<outline sha256>``, made with ``O_EXCL``): runtimes started together
leave each entry to the first of them, and a claim ten minutes old is taken over.
Nothing is synced to disk: a cache lost in a crash is refilled, and a torn file is
refused by every reader's check.

Objects are copied from the installed files, never hard-linked to them: a link would
make the environment's file the cache's inode, which anyone who can write the cache
(every runtime of the host, often all one uid) could then chmod and rewrite, changing
the files installed here.

Filling must never fail or slow an install: it runs in a thread of its own once the
install has committed (``fill_in_background``; copying NumPy, SciPy and pandas took 0.4 s
on tmpfs and 1.8 s on disk here), and every ``OSError`` (read-only mount, full disk,
permissions) is logged at debug and the rest of the fill is dropped.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .sharedcache import SharedCache

__all__ = ["FillJob", "fill", "fill_in_background", "wait_for_fills"]

_log = logging.getLogger(__name__)

_TEMP_PREFIX = ".tmp-"
_STALE_SECONDS = 3600  # a temporary file this old belongs to a filler that died
_CLAIM_SECONDS = 600  # a claim on an entry this old belongs to a filler that died
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_PIECE = 8 << 20


@dataclass(frozen=True)
class FillJob:
    """One committed wheel's stored copy, as the cache keeps it."""

    filename: str
    outline: bytes
    outline_sha256: str
    files: tuple[tuple[Path, str, int], ...]  # (installed file, its sha256 hex, its size)
    # Members not installed as they are (the wheel's RECORD, scripts, empty entries): their
    # bytes, kept in memory by the stager, by sha256 hex.
    blobs: tuple[tuple[str, bytes], ...] = ()
    # Replace what is there: the entry was found unusable (a neighbour changed it) and
    # these bytes were just verified, so they put it right.
    repair: bool = False


_fills: list[threading.Thread] = []  # started by this process, perhaps still running
_fills_lock = threading.Lock()


def fill_in_background(cache: SharedCache, jobs: Sequence[FillJob]) -> None:
    """Run ``fill`` in a thread of its own: the install returns without waiting for it.

    Not a daemon thread: an interpreter that exits (the command line) waits for it, so a
    fill is finished rather than cut short.
    """
    if not jobs:
        return
    thread = threading.Thread(
        target=_fill_quietly, args=(cache, tuple(jobs)), name="ipydeps-cache-fill"
    )
    with _fills_lock:
        _fills[:] = [running for running in _fills if running.is_alive()]
        _fills.append(thread)
    thread.start()


def wait_for_fills(timeout: float | None = None) -> None:
    """Wait until the fills this process started have finished (each up to ``timeout``).

    The next install calls it first, so that it never replaces files still being copied.
    """
    with _fills_lock:
        running = list(_fills)
    for thread in running:
        thread.join(timeout)


def _fill_quietly(cache: SharedCache, jobs: Sequence[FillJob]) -> None:
    try:
        fill(cache, jobs)
    except Exception:  # noqa: BLE001 - a thread's error would be printed; the cache is optional
        _log.debug("shared cache %s: the fill failed", cache.root, exc_info=True)


def fill(cache: SharedCache, jobs: Sequence[FillJob]) -> int:
    """Keep every job's files and outline in ``cache``; return how many wheels were added.

    Never raises ``OSError``: a cache that cannot be written is logged and left.
    """
    filled = 0
    started = time.perf_counter()
    swept: set[Path] = set()
    for job in jobs:
        try:
            if _fill_one(cache, job, swept):
                filled += 1
        except OSError as error:
            _log.debug(
                "shared cache %s: %s not kept (%s)", cache.root, job.filename, error.strerror
            )
            if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                break  # the next wheels would meet the same wall
    if jobs:
        _log.debug(
            "shared cache %s: %d of %d wheel(s) added in %.2f s",
            cache.root,
            filled,
            len(jobs),
            time.perf_counter() - started,
        )
    return filled


def _fill_one(cache: SharedCache, job: FillJob, swept: set[Path]) -> bool:
    outline_path = cache.outline_path(job.outline_sha256)
    if job.repair:
        _fill_entry(cache, job, swept)
        return True
    if os.path.lexists(outline_path):
        return False
    claim = _claim(outline_path, swept)
    if claim is None:
        _log.debug(
            "shared cache %s: %s is being added by another install", cache.root, job.filename
        )
        return False
    try:
        _fill_entry(cache, job, swept)
    finally:
        _unlink_quietly(claim)
    return True


def _claim(outline_path: Path, swept: set[Path]) -> Path | None:
    """Claim the entry of ``outline_path`` for this filler; None when another one holds it.

    Runtimes started together all miss at once: one of them copies each entry, not all
    (measured: ten environments filling at once took twice as long to be ready as with no
    cache). A claim older than ``_CLAIM_SECONDS`` belongs to a filler that died: taken over.
    """
    _prepare(outline_path.parent, swept)
    claim = outline_path.parent / f"{_TEMP_PREFIX}claim-{outline_path.name}"
    for _ in range(2):
        try:
            os.close(os.open(claim, _WRITE_FLAGS, 0o644))
            return claim
        except FileExistsError:
            try:
                age = time.time() - os.lstat(claim).st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if age < _CLAIM_SECONDS:
                return None
            _unlink_quietly(claim)
    return None


def _fill_entry(cache: SharedCache, job: FillJob, swept: set[Path]) -> None:
    outline_path = cache.outline_path(job.outline_sha256)
    for source, sha256_hex, size in job.files:
        target = cache.object_path(sha256_hex)
        if not job.repair and os.path.lexists(target):
            continue
        _prepare(target.parent, swept)
        temporary = _temporary(target.parent)
        try:
            _copy(source, temporary, size)
            _publish(temporary, target, replace=job.repair)
        finally:
            _unlink_quietly(temporary)
    for sha256_hex, data in job.blobs:
        target = cache.object_path(sha256_hex)
        if job.repair or not os.path.lexists(target):
            _prepare(target.parent, swept)
            _write(target, data, replace=job.repair)
    # Last: a reader finds the entry only once every object is in place.
    _prepare(outline_path.parent, swept)
    _write(outline_path, job.outline, replace=job.repair)


def _write(target: Path, data: bytes, *, replace: bool) -> None:
    """Write ``data`` (0444) to a temporary file beside ``target``, then publish it."""
    temporary = _temporary(target.parent)
    try:
        handle = os.open(temporary, _WRITE_FLAGS, 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view) :]
            os.fchmod(handle, 0o444)
        finally:
            os.close(handle)
        _publish(temporary, target, replace=replace)
    finally:
        _unlink_quietly(temporary)


def _prepare(directory: Path, swept: set[Path]) -> None:
    """Make ``directory``; the first time in this fill, remove its stale temporary files."""
    if directory in swept:
        return
    os.makedirs(directory, exist_ok=True)
    swept.add(directory)
    now = time.time()
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.startswith(_TEMP_PREFIX):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > _STALE_SECONDS:
                    os.unlink(entry.path)
            except OSError:
                continue  # another filler swept it first, or it is not ours to remove


def _temporary(directory: Path) -> Path:
    return directory / f"{_TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"


def _copy(source: Path, temporary: Path, size: int) -> None:
    """Copy the installed ``source`` (``size`` bytes, else refused) into a new 0444 file."""
    reader = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if os.fstat(reader).st_size != size:
            # Changed since it was installed: its bytes are no longer the ones verified.
            raise OSError(errno.ESTALE, f"{source.name} changed since it was installed")
        writer = os.open(temporary, _WRITE_FLAGS, 0o444)
        try:
            _send(reader, writer, size)
            os.fchmod(writer, 0o444)
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _send(reader: int, writer: int, size: int) -> None:
    """Copy ``size`` bytes in the kernel when it can (sendfile), else through a buffer."""
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(writer, reader, offset, min(size - offset, _PIECE))
            if not sent:
                raise OSError(errno.ESTALE, "the file was cut short while it was copied")
            offset += sent
        return
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP) or offset:
            raise
    while offset < size:
        piece = os.pread(reader, min(size - offset, _PIECE), offset)
        if not piece:
            raise OSError(errno.ESTALE, "the file was cut short while it was copied")
        view = memoryview(piece)
        while view:
            view = view[os.write(writer, view) :]
        offset += len(piece)


def _publish(temporary: Path, target: Path, *, replace: bool) -> None:
    """Give ``temporary`` its final name; a name already taken keeps what it has."""
    if replace:
        os.replace(temporary, target)
        return
    # A name already taken: another filler was first, and same name means same bytes.
    with contextlib.suppress(FileExistsError):
        os.link(temporary, target)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
