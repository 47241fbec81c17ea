"""Build tiny but valid (and buildable) source distributions in code, and legacy upload forms."""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
import uuid
import zlib
from collections.abc import Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def make_sdist(
    directory: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    extra: Mapping[str, bytes] | None = None,
    pkg_info_name: str | None = None,
    filename: str | None = None,
) -> Path:
    """Write ``<name>-<version>.tar.gz`` (normalized) with PKG-INFO and a setuptools project.

    ``extra`` adds members by their full path (which may escape on purpose);
    ``pkg_info_name`` and ``filename`` make deliberately wrong sdists.
    """
    module = canonicalize_name(name).replace("-", "_")
    stem = f"{module}-{version}"
    pkg_info = [
        "Metadata-Version: 2.1",
        f"Name: {pkg_info_name or name}",
        f"Version: {version}",
        "Summary: A fixture source package",
    ]
    if requires_python:
        pkg_info.append(f"Requires-Python: {requires_python}")
    pyproject = (
        '[build-system]\nrequires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
        'description = "A fixture source package"\n'
    )
    members: dict[str, bytes] = {
        f"{stem}/PKG-INFO": ("\n".join(pkg_info) + "\n").encode(),
        f"{stem}/pyproject.toml": pyproject.encode(),
        f"{stem}/{module}/__init__.py": f"__version__ = {version!r}\n".encode(),
    }
    members.update(extra or {})
    path = Path(directory) / (filename or f"{stem}.tar.gz")
    with tarfile.open(path, "w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def legacy_form(
    path: Path, fields: Mapping[str, str] | None = None, *, content: bytes | None = None
) -> tuple[bytes, str]:
    """Return (body, Content-Type) of a legacy upload form as twine sends it for ``path``."""
    data = path.read_bytes() if content is None else content
    name, version = path.name.split("-")[:2]
    if path.name.endswith(".tar.gz"):
        version = version.removesuffix(".tar.gz")
    form = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if path.name.endswith(".whl") else "sdist",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
    }
    form.update(fields or {})
    boundary = uuid.uuid4().hex
    chunks = []
    for key, value in form.items():
        part = f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        chunks.append(part.encode())
    chunks.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + data
        + b"\r\n"
    )
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def zero_sdist(
    directory: Path,
    name: str,
    version: str,
    members_mib: list[int],
    *,
    trailing_mib: int = 0,
) -> Path:
    """Write a tar.gz sdist whose members hold ``members_mib`` MiB of zeros each.

    Built without deflating the zeros: after a full flush the compressor starts afresh,
    so each MiB of zeros compresses to the same bytes, which are repeated (a 3.6 GB
    member costs a few MB and a second to write). ``trailing_mib`` MiB of zeros follow
    the tar's end inside the gzip stream.
    """
    stem = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
    crc = 0
    size = 0

    def add(data: bytes) -> None:
        nonlocal crc, size
        out.extend(packer.compress(data) + packer.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(data, crc)
        size += len(data)

    def add_zeros(mib: int) -> None:
        nonlocal crc, size
        if not mib:
            return
        block = packer.compress(chunk) + packer.flush(zlib.Z_FULL_FLUSH)
        out.extend(block * mib)
        for _ in range(mib):
            crc = zlib.crc32(chunk, crc)
        size += mib << 20

    pkg_info = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    add(_tar_header(f"{stem}/PKG-INFO", len(pkg_info)) + pkg_info + bytes(-len(pkg_info) % 512))
    for index, mib in enumerate(members_mib):
        add(_tar_header(f"{stem}/zeros{index}.bin", mib << 20))
        add_zeros(mib)
    add(bytes(1024))  # the tar's end: two zero blocks
    add_zeros(trailing_mib)
    out.extend(packer.flush())
    out.extend(struct.pack("<II", crc, size & 0xFFFFFFFF))
    path = Path(directory) / f"{stem}.tar.gz"
    path.write_bytes(bytes(out))
    return path


def _tar_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    return info.tobuf(tarfile.GNU_FORMAT)
