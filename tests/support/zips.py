"""Read zip archives the way a streaming client does, and give wheel members modes and dates."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_LOCAL = 0x04034B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_ZIP64_LOCATOR = 0x07064B50
_LOCAL_FORMAT = "<IHHHHHIIIHH"
_END_FORMAT = "<IHHHHIIH"


@dataclass(frozen=True)
class LocalHeader:
    """One member's local file header, as the bytes say (APPNOTE 4.3.7)."""

    name: str
    flags: int
    method: int
    date_time: tuple[int, int, int, int, int, int]
    crc: int
    compressed_size: int
    file_size: int
    extra: bytes
    data: bytes


@dataclass(frozen=True)
class ZipWalk:
    """Every local header from the front of the archive, and the end record's facts."""

    members: tuple[LocalHeader, ...]
    comment: bytes
    zip64_locator: bool


def walk_local_headers(path: Path) -> ZipWalk:
    """Read ``path`` front to back by its local headers only, as a client reading a stream must.

    Each header's sizes are trusted to find the next one, which works only when they are in
    the header (flag bit 3 clear). Raises ``ValueError`` when the bytes are not laid out so.
    """
    blob = path.read_bytes()
    offset = 0
    members: list[LocalHeader] = []
    while struct.unpack_from("<I", blob, offset)[0] == _LOCAL:
        (
            _,
            _,
            flags,
            method,
            dos_time,
            dos_date,
            crc,
            compressed,
            size,
            name_length,
            extra_length,
        ) = struct.unpack_from(_LOCAL_FORMAT, blob, offset)
        start = offset + struct.calcsize(_LOCAL_FORMAT)
        name = blob[start : start + name_length].decode("utf-8" if flags & 0x800 else "cp437")
        extra = blob[start + name_length : start + name_length + extra_length]
        data_start = start + name_length + extra_length
        date_time = (
            (dos_date >> 9) + 1980,
            (dos_date >> 5) & 0xF,
            dos_date & 0x1F,
            dos_time >> 11,
            (dos_time >> 5) & 0x3F,
            (dos_time & 0x1F) * 2,
        )
        members.append(
            LocalHeader(
                name=name,
                flags=flags,
                method=method,
                date_time=date_time,
                crc=crc,
                compressed_size=compressed,
                file_size=size,
                extra=extra,
                data=blob[data_start : data_start + compressed],
            )
        )
        offset = data_start + compressed
    if struct.unpack_from("<I", blob, offset)[0] != _CENTRAL:
        raise ValueError(f"{path.name}: no local header or central directory at {offset}")
    end = blob.rfind(struct.pack("<I", _END))
    if end < 0:
        raise ValueError(f"{path.name}: no end of central directory record")
    comment_length = struct.unpack_from(_END_FORMAT, blob, end)[-1]
    comment_start = end + struct.calcsize(_END_FORMAT)
    locator = end >= 20 and struct.unpack_from("<I", blob, end - 20)[0] == _ZIP64_LOCATOR
    return ZipWalk(
        members=tuple(members),
        comment=blob[comment_start : comment_start + comment_length],
        zip64_locator=locator,
    )


def restamp_members(
    wheel: Path,
    target: Path,
    *,
    modes: Mapping[str, int] | None = None,
    date_times: Mapping[str, tuple[int, int, int, int, int, int]] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    directories: tuple[str, ...] = (),
) -> Path:
    """Write ``wheel`` again as ``target`` with the same members and bytes (RECORD stays valid).

    ``modes`` sets a member's Unix mode (e.g. ``0o100755``), ``date_times`` its timestamp,
    ``compression`` every member's method; ``directories`` are added as directory entries
    before the first member.
    """
    modes = modes or {}
    date_times = date_times or {}
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as out:
        for directory in directories:
            info = zipfile.ZipInfo(directory, (2020, 1, 2, 3, 4, 6))
            info.external_attr = (0o40755 << 16) | 0x10
            out.writestr(info, b"")
        for member in source.infolist():
            info = zipfile.ZipInfo(
                member.filename, date_times.get(member.filename, member.date_time)
            )
            info.compress_type = compression
            info.external_attr = modes.get(member.filename, 0o100644) << 16
            out.writestr(info, source.read(member))
    return target
