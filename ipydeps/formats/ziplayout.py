"""The ZIP records a wheel reader parses by hand: local file header, central directory, end record.

``zipfile`` reads a wheel from its central directory. These are for what it does not do:
comparing each local header with the central directory (the upload check), finding where a
member's data starts for ``pread`` (the installer's parallel extraction) and reading an
archive front to back as it streams in (a stored copy). Layouts: PKWARE APPNOTE 6.3.10,
sections 4.3.7 (local file header), 4.3.12 (central directory header), 4.3.16 (end record).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from .errors import FormatError

__all__ = [
    "CENTRAL_SIGNATURE",
    "END_SIGNATURE",
    "FLAG_DATA_DESCRIPTOR",
    "FLAG_ENCRYPTED",
    "FLAG_UTF8",
    "LOCAL_HEADER",
    "LOCAL_SIGNATURE",
    "METHOD_STORED",
    "ZIP64_END_SIGNATURE",
    "ZIP64_LIMIT",
    "CentralEntry",
    "DamagedZipError",
    "LocalHeader",
    "Zip64Error",
    "decode_name",
    "read_central_directory",
    "read_local_header",
]

LOCAL_SIGNATURE = b"PK\x03\x04"
CENTRAL_SIGNATURE = b"PK\x01\x02"
END_SIGNATURE = b"PK\x05\x06"
ZIP64_END_SIGNATURE = b"PK\x06\x06"
FLAG_ENCRYPTED = 0x1
FLAG_DATA_DESCRIPTOR = 0x8  # CRC and sizes follow the data, not in the local header
FLAG_UTF8 = 0x800  # the name is UTF-8 (else code page 437)
METHOD_STORED = 0
ZIP64_LIMIT = 0xFFFFFFFF  # a 32-bit field holding this means: the value is in a zip64 record

LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # 30 bytes, signature included
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # 46 bytes
_END_RECORD = struct.Struct("<4s4H2LH")  # 22 bytes


class LocalHeader(NamedTuple):
    """A local file header (the 30 bytes before a member's name, extra field and data)."""

    signature: bytes
    version: int
    flags: int
    method: int
    time: int
    date: int
    crc: int
    compressed_size: int
    size: int
    name_length: int
    extra_length: int

    @property
    def length(self) -> int:
        """Bytes from the header's first byte to the member's data: header, name and extra."""
        return LOCAL_HEADER.size + self.name_length + self.extra_length


class CentralEntry(NamedTuple):
    """One central directory header: what a reader of the directory believes about a member."""

    name: str
    header_offset: int
    crc: int
    compressed_size: int
    size: int
    external_attributes: int

    @property
    def executable(self) -> bool:
        """Whether the Unix mode in the external attributes has an executable bit."""
        return bool((self.external_attributes >> 16) & 0o111)


class DamagedZipError(FormatError):
    """The archive's records are cut off or contradict each other."""


class Zip64Error(FormatError):
    """The archive uses zip64 records, which only ``zipfile`` reads here."""


def read_local_header(block: bytes) -> LocalHeader | None:
    """Return the local header in ``block`` (its first 30 bytes); None when it is not one.

    None means: fewer than 30 bytes, or no local header signature.
    """
    if len(block) < LOCAL_HEADER.size:
        return None
    header = LocalHeader._make(LOCAL_HEADER.unpack_from(block))
    return header if header.signature == LOCAL_SIGNATURE else None


def decode_name(raw: bytes, flags: int, errors: str = "strict") -> str:
    """Return a member name as ZIP encodes it: UTF-8 when flag bit 11 is set, else cp437.

    ``errors`` is ``bytes.decode``'s: "replace" to compare a hostile name, not read it.
    """
    if raw.isascii():  # both encodings agree on ASCII, and its codec is C, cp437's Python
        return raw.decode("ascii")
    return raw.decode("utf-8" if flags & FLAG_UTF8 else "cp437", errors)


def read_central_directory(tail: bytes, offset: int) -> tuple[CentralEntry, ...]:
    """Read the central directory and end record at the start of ``tail``.

    ``offset`` is where ``tail`` starts in the archive: the end record must say that the
    directory starts there and holds as many entries as were read.

    Raises:
        Zip64Error: the archive has zip64 records.
        DamagedZipError: the records are cut off or disagree.
    """
    entries: list[CentralEntry] = []
    position = 0
    while tail[
        position : position + 4
    ] == CENTRAL_SIGNATURE and position + _CENTRAL_HEADER.size <= len(tail):
        (
            _,
            _,
            _,
            _,
            _,
            flags,
            _,
            _,
            _,
            crc,
            compressed,
            size,
            name_length,
            extra_length,
            comment_length,
            _,
            _,
            attributes,
            header_offset,
        ) = _CENTRAL_HEADER.unpack_from(tail, position)
        if ZIP64_LIMIT in (compressed, size, header_offset):
            raise Zip64Error("zip64 central directory")
        start = position + _CENTRAL_HEADER.size
        name = decode_name(tail[start : start + name_length], flags)
        entries.append(CentralEntry(name, header_offset, crc, compressed, size, attributes))
        position = start + name_length + extra_length + comment_length
    if tail[position : position + 4] == ZIP64_END_SIGNATURE:
        raise Zip64Error("zip64 end of central directory")
    end = tail[position : position + _END_RECORD.size]
    if len(end) != _END_RECORD.size or end[:4] != END_SIGNATURE:
        raise DamagedZipError("damaged central directory")
    _, disk, _, _, count, _, directory_offset, _ = _END_RECORD.unpack(end)
    if disk != 0 or count != len(entries) or directory_offset != offset:
        raise DamagedZipError("damaged central directory")
    return tuple(entries)
