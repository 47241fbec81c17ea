"""Remove what a killed writer left behind: upload temp files, and temp files in the tree.

``kill -9`` during an upload leaves ``<state>/tmp/upload-*.part`` (as large as the
upload), and during an atomic write a ``.tmp-*`` file beside its target, inside the
public tree that users sync to a CDN. Nothing else removes them, so the server does at
start and ``ipydeps-repo index`` does before rebuilding.

Several replicas may share one data directory, so a file is removed only when no live
writer can own it. An upload's writer holds an flock on its temp file for as long as it
has it open and while the store validates it, and the lock dies with the process; an
unlocked ``.part`` is removed once it has not been written for ``grace_seconds`` (the
time between closing it and the store taking it is covered by that). Tree and cache temp
files are written only under the publish lock, so they are removed under it, after a
short grace for the one writer that does not take it (``keygen``).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .layout import DataLayout
from .locking import lock_held_elsewhere

Lock = Callable[[], AbstractContextManager[Any]]

DEFAULT_GRACE_SECONDS = 600.0
TREE_GRACE_SECONDS = 60.0
UPLOAD_PATTERN = ("upload-", ".part")
ATOMIC_PREFIX = ".tmp-"


@dataclass(frozen=True)
class Removed:
    """What was removed: paths relative to the data directory, and their bytes."""

    paths: tuple[str, ...]
    bytes: int

    def describe(self) -> str:
        """Return a one-line summary, e.g. ``removed 3 leftover temp file(s), 450.2 MB``."""
        return f"removed {len(self.paths)} leftover temp file(s), {self.bytes / 1e6:.1f} MB"


def remove_leftovers(
    layout: DataLayout,
    lock: Lock,
    *,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    now: float | None = None,
) -> Removed:
    """Remove orphaned upload parts and atomic-write temp files; return what went.

    ``lock`` is the store's publish lock, under which tree and cache temp files are written.
    """
    moment = time.time() if now is None else now
    removed: list[tuple[Path, int]] = []
    for path, info in _regular_files(layout.tmp, recurse=False):
        if (
            path.name.startswith(UPLOAD_PATTERN[0])
            and path.name.endswith(UPLOAD_PATTERN[1])
            and info.st_mtime < moment - grace_seconds
            and not lock_held_elsewhere(path)
        ):
            removed += _unlink(path, info)
    with lock():
        for root in (layout.tree, layout.cache):
            for path, info in _regular_files(root, recurse=True):
                if path.name.startswith(ATOMIC_PREFIX) and (
                    info.st_mtime < moment - min(grace_seconds, TREE_GRACE_SECONDS)
                ):
                    removed += _unlink(path, info)
    return Removed(
        paths=tuple(str(path.relative_to(layout.root)) for path, _ in removed),
        bytes=sum(size for _, size in removed),
    )


def _regular_files(root: Path, *, recurse: bool) -> Iterator[tuple[Path, os.stat_result]]:
    """Yield (path, lstat) of the regular files under ``root``; symlinks are not followed."""
    if not root.is_dir():
        return
    for folder, directories, files in os.walk(root, followlinks=False):
        for name in files:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISREG(info.st_mode):
                yield path, info
        if not recurse:
            directories.clear()


def _unlink(path: Path, info: os.stat_result) -> list[tuple[Path, int]]:
    try:
        path.unlink()
    except FileNotFoundError:
        return []  # another replica was quicker
    return [(path, info.st_size)]
