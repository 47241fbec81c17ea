"""A stored copy's outline: its bytes with every member's data replaced by that data's sha256.

A stored copy (every member ZIP_STORED, sizes in the local header) is read front to back:
local header, name, extra field, data, and so on, then the central directory and end
record. Its OUTLINE keeps every byte that is not member data as is, and puts in place of
each member's data the 32-byte binary sha256 of that data::

    outline = frame_0 || sha256(data_0) || frame_1 || sha256(data_1) || ... || tail

The outline sha256 (hex) binds every member's digest, so checking it and each member's
digest verifies every byte of the copy as the whole file's sha256 does, while each data
byte is hashed once: the digest a client needs for RECORD is the one the outline takes.
The repository publishes it beside the copy's sha256 (``wire.OUTLINE_KEY``).

The walk's rules are those of a client streaming a copy (``installers/wheelstream.py``):
after each member's data comes a local header or the central directory; a compressed
member, a data descriptor, encryption or a zip64 size is not a stored copy. A client that
cannot walk a stream by these rules therefore holds something other than the copy the
repository outlined.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from .errors import FormatError
from .ziplayout import (
    CENTRAL_SIGNATURE,
    END_SIGNATURE,
    FLAG_DATA_DESCRIPTOR,
    FLAG_ENCRYPTED,
    LOCAL_HEADER,
    LOCAL_SIGNATURE,
    METHOD_STORED,
    ZIP64_END_SIGNATURE,
    ZIP64_LIMIT,
    LocalHeader,
)

__all__ = [
    "TAIL_SIGNATURES",
    "NotAStoredCopyError",
    "OutlineHasher",
    "outline_sha256",
    "stored_member_problem",
]

# What may follow a member's data besides the next local header: the archive's tail.
TAIL_SIGNATURES = (CENTRAL_SIGNATURE, END_SIGNATURE, ZIP64_END_SIGNATURE)
_PIECE = 1 << 20


class NotAStoredCopyError(FormatError):
    """The archive cannot be walked front to back as a stored copy: it has no outline."""


class OutlineHasher:
    """Hashes an outline as it is walked: frame bytes as they are, members by their digest.

    With ``keep`` the outline bytes are kept (about 100 bytes a member) for ``outline()``,
    and hashed once, when asked: a stream's thousands of small frames then cost an append
    each rather than a call into the hash.
    """

    def __init__(self, *, keep: bool = False) -> None:
        self._kept: bytearray | None = bytearray() if keep else None
        self._hash = hashlib.sha256()  # fed only when the outline is not kept

    def frame(self, data: bytes | memoryview) -> None:
        """Add bytes that are not member data (headers, names, extra fields, the tail)."""
        if self._kept is not None:
            self._kept += data
        else:
            self._hash.update(data)

    def member(self, digest: bytes) -> None:
        """Add one member's data, as the 32-byte binary sha256 ``digest`` of it."""
        if len(digest) != 32:
            raise ValueError(f"a member digest is 32 bytes, not {len(digest)}")
        self.frame(digest)

    def hexdigest(self) -> str:
        """Return the hex sha256 of the outline so far."""
        if self._kept is not None:
            return hashlib.sha256(self._kept).hexdigest()
        return self._hash.hexdigest()

    def outline(self) -> bytes:
        """Return the outline bytes so far; only for a hasher made with ``keep=True``."""
        if self._kept is None:
            raise ValueError("this OutlineHasher does not keep the outline (keep=False)")
        return bytes(self._kept)


def stored_member_problem(header: LocalHeader) -> str | None:
    """Say why a member with this local header breaks a stored copy; None when it does not."""
    if header.method != METHOD_STORED or header.compressed_size != header.size:
        return "a member is compressed: not a stored copy"
    if header.flags & (FLAG_ENCRYPTED | FLAG_DATA_DESCRIPTOR) or header.size == ZIP64_LIMIT:
        return "a member's sizes are not in its local header"
    return None


def outline_sha256(path: str | os.PathLike[str]) -> str:
    """Return the hex outline sha256 of the stored copy at ``path``, read front to back.

    Raises:
        NotAStoredCopyError: (a ``FormatError``) the file is not a stored copy: a member
            is compressed or has its sizes elsewhere, unexpected bytes, or it is cut off.
        OSError: the file could not be read.
    """
    hasher = OutlineHasher()
    name = Path(path).name
    with open(path, "rb") as handle:
        offset = 0
        while True:
            signature = handle.read(4)
            if signature in TAIL_SIGNATURES:
                hasher.frame(signature)
                while piece := handle.read(_PIECE):
                    hasher.frame(piece)
                return hasher.hexdigest()
            if signature != LOCAL_SIGNATURE:
                raise NotAStoredCopyError(f"{name}: unexpected bytes at offset {offset}")
            block = signature + handle.read(LOCAL_HEADER.size - 4)
            if len(block) != LOCAL_HEADER.size:
                raise NotAStoredCopyError(f"{name}: a local header is cut off")
            header = LocalHeader._make(LOCAL_HEADER.unpack(block))
            problem = stored_member_problem(header)
            if problem is not None:
                raise NotAStoredCopyError(f"{name}: {problem}")
            rest = header.name_length + header.extra_length
            names = handle.read(rest)
            if len(names) != rest:
                raise NotAStoredCopyError(f"{name}: a member's name is cut off")
            hasher.frame(block)
            hasher.frame(names)
            hasher.member(_data_digest(handle, header.size, name))
            offset += header.length + header.size


def _data_digest(handle: BinaryIO, size: int, name: str) -> bytes:
    """Return the binary sha256 of the next ``size`` bytes of ``handle``."""
    digest = hashlib.sha256()
    left = size
    read = handle.read
    while left:
        piece = read(min(left, _PIECE))
        if not piece:
            raise NotAStoredCopyError(f"{name}: a member's data is cut off")
        digest.update(piece)
        left -= len(piece)
    return digest.digest()
