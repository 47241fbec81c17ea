"""Inter-process locks (fcntl.flock on a lock file), safe for several replicas on one shared FS."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (created if missing) for the ``with`` block.

    Each call opens its own file description, so threads of one process exclude each
    other as well as other processes. The lock is released when the file is closed,
    also if the process dies, so a crash never leaves a stale lock behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def lock_held_elsewhere(path: Path) -> bool:
    """Tell whether another open file description holds an flock on ``path``.

    A writer that locks its temp file (``lock_open_file``) keeps the lock until it
    closes the file or dies, so an unlocked temp file has no live writer.
    A file that is gone is not held.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


def lock_open_file(descriptor: int) -> None:
    """Take an flock on an open temp file: it says "a live writer owns this" to cleaners."""
    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
