"""Scratch directories for downloads that a killed process does not leave behind for good.

An install downloads its wheels into ``ipydeps-download-<pid>-<random>`` in ``/dev/shm`` or
the temporary directory, and removes it when done. A process killed outright (SIGKILL, out
of memory) cannot, and memory-backed scratch space is memory lost until reboot. So every
scratch directory holds a lock file that its owner keeps locked (``flock``) while it lives;
the next install removes the directories whose lock it can take: their owner is gone.
A lock, not only the pid in the name, so that processes in other pid namespaces sharing
the directory (containers) are safe too; the pid covers the instant before the lock exists.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .processes import process_exists

PREFIX = "ipydeps-download-"
# Memory-backed scratch space, used for the downloaded wheels when it has room for all of
# them: each wheel is written once and read back once, and on a slow disk that write
# competes with the unpacked files' writes (uv avoids it by unpacking while downloading).
MEMORY_SCRATCH = Path("/dev/shm")
_LOCK = ".owner.lock"


@contextlib.contextmanager
def scratch_directory(parent: str | None) -> Iterator[Path]:
    """Make a locked scratch directory in ``parent`` (None: the temporary directory)."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent))
    descriptor = -1
    try:
        # Locked under another name, then renamed: a sweeper that finds the lock file finds
        # it locked. Made and locked in place, the instant between the two let another
        # install's sweep take the lock and remove a live download (seen with 50 at once).
        unready = path / f"{_LOCK}.new"
        descriptor = os.open(unready, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        _lock(descriptor)
        os.rename(unready, path / _LOCK)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if descriptor >= 0:
            os.close(descriptor)


def scratch_parent(sizes: Sequence[int | None]) -> str | None:
    """Return ``/dev/shm`` when it is writable and has twice the downloads' ``sizes`` free.

    Only when the index gives every wheel's size (None: unknown): downloads are refused
    past it, so memory holds no more than that; a file of unknown size goes to disk.
    None means the temporary directory.
    """
    if any(size is None for size in sizes):
        return None
    needed = sum(size or 0 for size in sizes)
    if not needed or not os.access(MEMORY_SCRATCH, os.W_OK | os.X_OK):
        return None
    try:
        status = os.statvfs(MEMORY_SCRATCH)
    except OSError:
        return None
    return str(MEMORY_SCRATCH) if status.f_bavail * status.f_frsize >= 2 * needed else None


def remove_orphans(parents: Iterable[str | Path]) -> list[Path]:
    """Remove the scratch directories in ``parents`` whose owner has died; return them.

    Only directories of this user, not symbolic links, whose lock can be taken (or, before
    their owner made the lock, whose pid is gone) are removed; others are left alone.
    """
    removed: list[Path] = []
    for parent in parents:
        try:
            names = [name for name in os.listdir(parent) if name.startswith(PREFIX)]
        except OSError:
            continue
        for name in names:
            path = Path(parent) / name
            if _is_orphan(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _is_orphan(path: Path) -> bool:
    try:
        status = path.lstat()
    except OSError:
        return False
    if not path.is_dir() or path.is_symlink() or status.st_uid != os.geteuid():
        return False
    try:
        descriptor = os.open(path / _LOCK, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return _pid_gone(path.name)  # made a moment ago, or by a version without locks
    except OSError:
        return False
    try:
        return _lock(descriptor, wait=False)
    finally:
        os.close(descriptor)  # releases the lock taken, if any


def _lock(descriptor: int, *, wait: bool = True) -> bool:
    """Take an exclusive ``flock`` on ``descriptor``; False if another holds it (not waiting)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: nothing is ever taken for an orphan
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    return True


def _pid_gone(name: str) -> bool:
    """Tell whether the pid in a scratch directory's name names no process (here)."""
    pid_text = name[len(PREFIX) :].split("-", 1)[0]
    if not pid_text.isascii() or not pid_text.isdigit() or "-" not in name[len(PREFIX) :]:
        return False  # no pid in the name: whose it is cannot be told, so it stays
    pid = int(pid_text)
    return pid != os.getpid() and not process_exists(pid)
