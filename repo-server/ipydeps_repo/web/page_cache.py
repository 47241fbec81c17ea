"""Index pages from memory: one stat per request, the file read again only when it changed.

A page is rewritten by an atomic rename (a new inode) whenever its project changes, so the
file's (mtime, size, inode, device) says whether the bytes held are still the file's. The
bytes and that key come from one open file (read, then fstat), so the ETag sent always
belongs to the bytes sent, even when a publish replaces the page meanwhile. Every process
holds its own copy; the file is the truth, so workers and replicas never disagree for
longer than one publish takes.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from dataclasses import dataclass

from .cache_policy import etag_of, http_date

# Simple pages are a few KiB (a project with hundreds of releases: a few hundred KiB).
DEFAULT_MAX_BYTES = 64 << 20
DEFAULT_MAX_PAGE_BYTES = 8 << 20

_StatKey = tuple[int, int, int, int]


@dataclass(frozen=True)
class CachedPage:
    """A page's bytes and the validators that belong to exactly these bytes."""

    body: bytes
    etag: str
    last_modified: str
    mtime: float


def _key(status: os.stat_result) -> _StatKey:
    return (status.st_mtime_ns, status.st_size, status.st_ino, status.st_dev)


class PageCache:
    """Pages by absolute path, least recently used dropped past ``max_bytes`` in all."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    ) -> None:
        self.max_bytes = max_bytes
        self.max_page_bytes = min(max_page_bytes, max_bytes)
        self._pages: OrderedDict[str, tuple[_StatKey, CachedPage]] = OrderedDict()
        self._held = 0

    @property
    def held_bytes(self) -> int:
        """Return how many bytes of pages this cache holds now."""
        return self._held

    def read(self, path: str) -> CachedPage | None:
        """Return the page at ``path`` as the file is now; None if it is not a regular file."""
        try:
            status = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(status.st_mode):
            return None
        held = self._pages.get(path)
        if held is not None and held[0] == _key(status):
            self._pages.move_to_end(path)
            return held[1]
        return self._load(path)

    def _load(self, path: str) -> CachedPage | None:
        try:
            with open(path, "rb") as handle:
                body = handle.read()
                status = os.fstat(handle.fileno())
        except (FileNotFoundError, NotADirectoryError):
            # Gone between the stat and the open: a delete of the last release.
            return None
        page = CachedPage(
            body=body,
            etag=etag_of(status),
            last_modified=http_date(status.st_mtime),
            mtime=status.st_mtime,
        )
        # Written in place while read (never done by the store): serve it, keep nothing.
        if len(body) == status.st_size and len(body) <= self.max_page_bytes:
            self._keep(path, _key(status), page)
        return page

    def _keep(self, path: str, key: _StatKey, page: CachedPage) -> None:
        previous = self._pages.pop(path, None)
        if previous is not None:
            self._held -= len(previous[1].body)
        self._pages[path] = (key, page)
        self._held += len(page.body)
        while self._held > self.max_bytes:
            _, (_, dropped) = self._pages.popitem(last=False)
            self._held -= len(dropped.body)
