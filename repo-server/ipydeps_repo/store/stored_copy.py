"""The stored copy of a wheel: the same members with no compression, beside the wheel.

Inflating big wheels is what costs a small client most CPU (numpy, scipy and pandas
unpack to about 208 MB). From a copy whose members are all ZIP_STORED, with CRC and sizes
in each local header, a client writes every file to disk as the bytes arrive: no inflate,
no temp file. The copy is about 3x larger on the wire, so the client chooses; pip and uv
never see it (PEP 691 reserves ``_``-prefixed keys for index implementations).

Beside the copy's sha256 the page gives its outline sha256 (``ipydeps.formats.outline``):
the copy with each member's data replaced by that data's sha256. A client checks the
outline with the member digests it computes anyway for RECORD, so it hashes each byte
once instead of twice.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ipydeps.formats.outline import NotAStoredCopyError, outline_sha256

from ..errors import StoredCopyError
from ..fileops import sha256_file

STORED_SUFFIX = ".stored"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredCopy:
    """The written copy: its hex sha256, its size in bytes and its hex outline sha256.

    ``outline_sha256`` is None for a copy that cannot be walked front to back (zip64,
    past 2 GiB): clients check such a copy as a whole file.
    """

    sha256: str
    size: int
    outline_sha256: str | None


def copy_outline(copy: Path) -> str | None:
    """Return the outline sha256 of the stored copy at ``copy``; None when it has none.

    Raises ``OSError`` when the file cannot be read.
    """
    try:
        return outline_sha256(copy)
    except NotAStoredCopyError:
        return None


def stored_copy_path(wheel: Path) -> Path:
    """Return where the stored copy of ``wheel`` lives: ``<wheel filename>.stored`` beside it."""
    return wheel.with_name(wheel.name + STORED_SUFFIX)


def write_stored_copy(wheel: Path) -> StoredCopy:
    """Write ``<wheel>.stored`` atomically (temp file beside it, fsync, rename) and describe it.

    The copy holds exactly the wheel's members, in the same order, with the same names,
    bytes, ``external_attr`` and ``date_time``, each ZIP_STORED with its CRC and sizes in
    the local header (flag bit 3 clear), no archive comment, and zip64 only where zipfile
    needs it (past 2 GiB). A wheel that is stored already is rewritten the same way, so
    every copy follows one contract; when that copy comes out byte for byte the same as the
    wheel (as it does for wheels written by ``mirror --compression stored``), it is a hard
    link to the wheel, so the bytes are on disk once.

    Raises:
        StoredCopyError: the copy could not be written (disk full, permissions, a
            directory in the way) or the wheel could not be read; nothing is left behind.
    """
    target = stored_copy_path(wheel)
    handle, name = tempfile.mkstemp(dir=wheel.parent, prefix=".tmp-")
    temp = Path(name)
    try:
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "w+b") as stream:
            _copy_members(wheel, stream)
            stream.flush()
            os.fsync(stream.fileno())
        copy = StoredCopy(
            sha256=sha256_file(temp), size=temp.stat().st_size, outline_sha256=copy_outline(temp)
        )
        _share_the_wheels_bytes(wheel, temp)
        os.replace(temp, target)
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as error:
        temp.unlink(missing_ok=True)
        raise StoredCopyError(
            f"{target.name}: the stored copy could not be written ({error}); "
            "the wheel is listed without it",
            hint="free disk space or fix the folder's permissions, then run 'ipydeps-repo index'",
        ) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return copy


def _share_the_wheels_bytes(wheel: Path, temp: Path) -> None:
    """Put a hard link to ``wheel`` in place of ``temp`` when the two hold the same bytes.

    The server replaces files (temp file, then rename) and never writes into one, so the
    two names cannot drift apart: a wheel replaced later is a new file, and its copy is
    made again. Where hard links are not possible, the copy written stays.
    """
    if temp.stat().st_size != wheel.stat().st_size or not filecmp.cmp(temp, wheel, shallow=False):
        return
    linked = temp.with_name(temp.name + "-link")
    try:
        os.link(wheel, linked)
    except OSError:
        return
    os.replace(linked, temp)


def _copy_members(wheel: Path, stream: BinaryIO) -> None:
    # ``stream`` is a seekable file, so zipfile writes each local header again with the
    # CRC and sizes once the member is written, and leaves flag bit 3 clear.
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(stream, "w") as copy:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, member.date_time)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = member.create_system
            info.external_attr = member.external_attr
            # zipfile decides zip64 from the size it is told before writing.
            info.file_size = member.file_size
            with source.open(member) as data, copy.open(info, "w") as out:
                shutil.copyfileobj(data, out, _CHUNK)
            # Writing turns an external_attr of 0 into 0o600 << 16; the central directory
            # is written from ``info`` at close, so the wheel's value is put back.
            info.external_attr = member.external_attr
