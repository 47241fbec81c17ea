"""A cache of installed wheels shared by the runtimes of one host, trusted for nothing.

Runtimes started together install the same stack. With ``shared_cache`` set (a directory,
e.g. a volume every runtime of the host mounts), the first to install a wheel from our
repository's stored copy keeps its files there, and the others take them from there
instead of downloading. The layout is versioned and content-addressed::

    v1/objects/<hex[:2]>/<sha256 hex>   a file's bytes, named by their sha256 (mode 0444)
    v1/outlines/<outline sha256 hex>    one stored copy's outline (ipydeps.formats.outline)

Nothing in the cache is believed. The anchor is the outline sha256 on the index page
(fetched over the configured, authenticated route). A cached copy is replayed through the
same ``WheelStreamStager`` a download feeds: the outline's frames as they are and, for each
member digest, the bytes of its object. The stager hashes every byte it writes, builds the
outline from those digests, and its ``finish`` checks it against the index's outline
sha256 before anything else, then runs every check a download gets (paths, RECORD, CRCs,
central directory). So the bytes hashed are the bytes written: a neighbour who can write
the cache can only make an entry unusable (the wheel is then downloaded), never change
what is installed. Symlinks, FIFOs, objects of the wrong size and absurd outlines are
refused before a byte is read.

This module reads and replays; ``cachefill`` fills. Both only log (at debug) what goes
wrong: the cache saves time, it must never fail an install.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .formats.ziplayout import (
    CENTRAL_SIGNATURE,
    END_SIGNATURE,
    LOCAL_HEADER,
    LOCAL_SIGNATURE,
    ZIP64_END_SIGNATURE,
    read_local_header,
)

__all__ = [
    "LAYOUT_VERSION",
    "OutlineMember",
    "SharedCache",
    "UnusableEntry",
    "outline_members",
    "replay",
]

_log = logging.getLogger(__name__)

LAYOUT_VERSION = "v1"
_DIGEST = 32
# An outline holds about 100 bytes a member; a stored copy of a million files would need
# 100 MB. Past this bound a file is refused unread: a neighbour cannot make us hold more.
MAX_OUTLINE_BYTES = 64 << 20
_PIECE = 4 << 20  # objects are fed to the stager this many bytes at a time
_TAIL_SIGNATURES = (CENTRAL_SIGNATURE, END_SIGNATURE, ZIP64_END_SIGNATURE)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnusableEntry(Exception):
    """A cache entry that cannot be used as it is: the wheel is downloaded instead."""


@dataclass(frozen=True)
class SharedCache:
    """The shared cache at ``root`` (the ``shared_cache`` setting)."""

    root: Path

    @classmethod
    def from_setting(cls, value: str | None) -> SharedCache | None:
        """Return the cache the ``shared_cache`` setting names; None when it is off."""
        return cls(Path(value)) if value else None

    @property
    def base(self) -> Path:
        """The directory of this layout version."""
        return self.root / LAYOUT_VERSION

    def object_path(self, sha256_hex: str) -> Path:
        """Where the file whose bytes have sha256 ``sha256_hex`` is kept."""
        return self.base / "objects" / sha256_hex[:2] / sha256_hex

    def outline_path(self, outline_hex: str) -> Path:
        """Where the outline whose sha256 is ``outline_hex`` is kept."""
        return self.base / "outlines" / outline_hex

    def read_outline(self, outline_hex: str, *, bound: int) -> bytes | None:
        """Return the outline stored for ``outline_hex`` once its sha256 matches; else None.

        ``bound``: the most bytes it may hold (refused unread past that). None when there is
        no entry. Raises ``UnusableEntry`` for one that is there but not usable as it is.
        """
        try:
            handle = os.open(self.outline_path(outline_hex), _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise UnusableEntry(f"its outline cannot be opened ({error.strerror})") from None
        try:
            facts = os.fstat(handle)
            if not stat.S_ISREG(facts.st_mode):
                raise UnusableEntry("its outline is not a regular file")
            if facts.st_size > min(bound, MAX_OUTLINE_BYTES):
                raise UnusableEntry(f"its outline holds {facts.st_size} bytes, absurd for it")
            outline = _read_exactly(handle, facts.st_size)
        finally:
            os.close(handle)
        if hashlib.sha256(outline).hexdigest() != outline_hex:
            raise UnusableEntry("its outline does not have the sha256 it is named by")
        return outline

    def open_object(self, sha256_hex: str, size: int) -> int:
        """Return a descriptor on the object named ``sha256_hex``, a regular file of ``size``.

        Raises ``UnusableEntry`` for a missing object, a symlink (``O_NOFOLLOW``), a FIFO or
        device (opened without blocking, refused by ``fstat``) or a file of another size.
        """
        # A string, not a Path: this runs for each of thousands of members.
        path = f"{self.root}/{LAYOUT_VERSION}/objects/{sha256_hex[:2]}/{sha256_hex}"
        try:
            handle = os.open(path, _READ_FLAGS)
        except OSError as error:
            raise UnusableEntry(
                f"object {sha256_hex[:12]} cannot be opened ({error.strerror})"
            ) from None
        facts = os.fstat(handle)
        if not stat.S_ISREG(facts.st_mode) or facts.st_size != size:
            os.close(handle)
            raise UnusableEntry(f"object {sha256_hex[:12]} is not a regular file of {size} bytes")
        return handle


def _read_exactly(handle: int, size: int) -> bytes:
    """Read ``size`` bytes from ``handle``; a file that changes meanwhile is refused."""
    parts: list[bytes] = []
    left = size
    while left:
        piece = os.read(handle, min(left, _PIECE))
        if not piece:
            raise UnusableEntry("a file was cut short while it was read")
        parts.append(piece)
        left -= len(piece)
    if os.read(handle, 1):
        raise UnusableEntry("a file grew while it was read")
    return b"".join(parts)


@dataclass(frozen=True)
class OutlineMember:
    """One member as an outline gives it: its frame before the data, data's digest and size."""

    frame: memoryview  # local header, name and extra field
    digest: bytes  # the 32-byte sha256 of the member's data
    size: int


def outline_members(outline: bytes) -> tuple[tuple[OutlineMember, ...], memoryview]:
    """Split an outline into its members and its tail (central directory and end record).

    Pure: the outline is walked as a stored copy is, with each member's data as its
    32-byte digest. Raises ``UnusableEntry`` for bytes that are not an outline (the
    stager would refuse them too; this only stops the replay early).
    """
    view = memoryview(outline)
    members: list[OutlineMember] = []
    position = 0
    while True:
        signature = bytes(view[position : position + 4])
        if signature in _TAIL_SIGNATURES:
            return tuple(members), view[position:]
        header = read_local_header(bytes(view[position : position + LOCAL_HEADER.size]))
        if signature != LOCAL_SIGNATURE or header is None:
            raise UnusableEntry(f"its outline has unexpected bytes at offset {position}")
        data_at = position + header.length
        if data_at + _DIGEST > len(view):
            raise UnusableEntry("its outline is cut off")
        members.append(
            OutlineMember(
                view[position:data_at], bytes(view[data_at : data_at + _DIGEST]), header.size
            )
        )
        position = data_at + _DIGEST


def replay(outline: bytes, cache: SharedCache, sink: Callable[[bytes], None]) -> int:
    """Feed ``sink`` the stored copy that ``outline`` describes, from the cache's objects.

    Returns the bytes fed. Each object is opened and checked (regular file, right size)
    before any of it is fed; ``UnusableEntry`` says why one cannot be used. The sink (a
    stager's) hashes what it is fed: this checks nothing of the content itself.
    """
    members, tail = outline_members(outline)
    fed = 0
    for member, handle in _opened(members, cache):
        try:
            sink(bytes(member.frame))
            fed += len(member.frame)
            for piece in _pieces(handle, member.size):
                sink(piece)
            fed += member.size
        finally:
            os.close(handle)
    sink(bytes(tail))
    return fed + len(tail)


def _opened(
    members: tuple[OutlineMember, ...], cache: SharedCache
) -> Iterator[tuple[OutlineMember, int]]:
    for member in members:
        yield member, cache.open_object(member.digest.hex(), member.size)


def _pieces(handle: int, size: int) -> Iterator[bytes]:
    """Yield the ``size`` bytes of ``handle`` in pieces; a file that shrank is refused."""
    left = size
    while left:
        piece = os.read(handle, min(left, _PIECE))
        if not piece:
            raise UnusableEntry("an object was cut short while it was read")
        left -= len(piece)
        yield piece
