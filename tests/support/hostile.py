"""Build structurally hostile wheels byte by byte, for tests of the server's upload checks.

``zipfile`` refuses to write most of these (a central directory that lies, a member that
inflates to a gigabyte from a kilobyte without compressing a gigabyte), so the archive is
laid out here from ``RawMember`` records: local header, data, central directory, end.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

DEFLATED = 8
STORED = 0
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_DOS_TIME, _DOS_DATE = 0, (2020 - 1980) << 9 | 1 << 5 | 1


@dataclass(frozen=True)
class RawMember:
    """One member as written: ``data`` is what is stored (deflated when ``method`` is 8).

    ``record`` and ``size`` are the true RECORD hash and size of the inflated bytes;
    ``central_size`` and ``local_size`` put another size in the central directory or the
    local header (a lie), ``local_name`` another name in the local header.
    """

    name: str
    data: bytes
    crc: int
    size: int
    record: str
    method: int = DEFLATED
    central_size: int | None = None
    local_size: int | None = None
    local_name: str | None = None


def record_hash_of(data: bytes) -> str:
    """Return the RECORD form of a sha256: ``sha256=<urlsafe base64 without padding>``."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def member(name: str, content: bytes | str, *, method: int = DEFLATED) -> RawMember:
    """Return an honest member holding ``content``."""
    data = content.encode() if isinstance(content, str) else content
    stored = data
    if method == DEFLATED:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        stored = packer.compress(data) + packer.flush()
    return RawMember(
        name=name,
        data=stored,
        crc=zlib.crc32(data),
        size=len(data),
        record=record_hash_of(data),
        method=method,
    )


def zero_bomb(name: str, size_mib: int) -> RawMember:
    """Return a deflated member of ``size_mib`` MiB of zeros, about 1 KiB per MiB stored.

    After a full flush the compressor starts afresh, so each MiB of zeros compresses to the
    same bytes: the stream is one block repeated, built without deflating a gigabyte.
    """
    chunk = bytes(1 << 20)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.flush()
    crc = 0
    digest = hashlib.sha256()
    for _ in range(size_mib):
        crc = zlib.crc32(chunk, crc)
        digest.update(chunk)
    record = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return RawMember(
        name=name,
        data=first + block * (size_mib - 1) + tail,
        crc=crc,
        size=size_mib << 20,
        record=record,
    )


def wheel_members(
    members: Sequence[RawMember],
    *,
    project: str = "demo",
    version: str = "1.0",
    record_rows: Sequence[str] | None = None,
) -> list[RawMember]:
    """Return ``members`` plus METADATA, WHEEL and a RECORD (true rows unless given)."""
    dist = f"{project}-{version}.dist-info"
    metadata = member(
        f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n"
    )
    wheel = member(
        f"{dist}/WHEEL",
        "Wheel-Version: 1.0\nGenerator: hostile\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    )
    body = [*members, metadata, wheel]
    if record_rows is None:
        record_rows = [f"{item.name},{item.record},{item.size}" for item in body]
    record = member(
        f"{dist}/RECORD", "".join(f"{row}\n" for row in [*record_rows, f"{dist}/RECORD,,"])
    )
    return [*body, record]


def write_zip(path: Path, members: Sequence[RawMember], *, gap: bytes = b"") -> Path:
    """Lay ``members`` out as a zip at ``path``; ``gap`` goes between the first two members."""
    out = bytearray()
    central = bytearray()
    for index, item in enumerate(members):
        if index == 1:
            out += gap
        offset = len(out)
        local_name = (item.local_name if item.local_name is not None else item.name).encode()
        name = item.name.encode()
        local_size = item.size if item.local_size is None else item.local_size
        central_size = item.size if item.central_size is None else item.central_size
        out += _LOCAL.pack(
            0x04034B50,
            20,
            0x800,
            item.method,
            _DOS_TIME,
            _DOS_DATE,
            item.crc,
            len(item.data),
            local_size,
            len(local_name),
            0,
        )
        out += local_name + item.data
        central += _CENTRAL.pack(
            0x02014B50,
            0x031E,
            20,
            0x800,
            item.method,
            _DOS_TIME,
            _DOS_DATE,
            item.crc,
            len(item.data),
            central_size,
            len(name),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            offset,
        )
        central += name
    out += central
    out += _END.pack(
        0x06054B50, 0, 0, len(members), len(members), len(central), len(out) - len(central), 0
    )
    path.write_bytes(bytes(out))
    return path


def hostile_wheel(
    directory: Path,
    members: Sequence[RawMember],
    *,
    filename: str = "demo-1.0-py3-none-any.whl",
    record_rows: Sequence[str] | None = None,
    gap: bytes = b"",
) -> Path:
    """Write a demo 1.0 wheel holding ``members`` (and true metadata) as ``filename``."""
    return write_zip(directory / filename, wheel_members(members, record_rows=record_rows), gap=gap)


__all__ = ["RawMember", "hostile_wheel", "member", "replace", "write_zip", "zero_bomb"]
