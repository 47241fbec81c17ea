"""Craft apk files by hand (also broken ones) to test the apk verifier and the server."""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Iterable

from ipydeps_repo.apk.archive import (
    END_OF_ARCHIVE,
    gzip_member,
    regular_info,
    split_gzip_members,
    tar_entry,
)
from ipydeps_repo.apk.keys import SigningKey

CHECKSUM_KEY = "APK-TOOLS.checksum.SHA1"


def tar_file(name: str, data: bytes, *, mode: int = 0o644, checksum: str | None = "auto") -> bytes:
    """One regular-file tar entry; ``checksum="auto"`` adds the right PAX SHA-1, None none."""
    info = regular_info(name, len(data), mode=mode)
    if checksum is not None:
        value = hashlib.sha1(data).hexdigest() if checksum == "auto" else checksum
        info.pax_headers = {CHECKSUM_KEY: value}
    return tar_entry(info, data)


def tar_dir(name: str) -> bytes:
    """One directory tar entry (mode 0755)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return tar_entry(info)


def data_tar(entries: Iterable[bytes], *, end: bool = True) -> bytes:
    """Join tar entries, with the end-of-archive blocks unless ``end`` is false."""
    return b"".join(entries) + (END_OF_ARCHIVE if end else b"")


PKGINFO = """pkgname = hello
pkgver = 1.0-r0
pkgdesc = crafted
url = https://example.org
builddate = 1700000000
packager = tests
size = 10
arch = noarch
origin = hello
license = MIT
datahash = {datahash}
"""


def craft_apk(
    key: SigningKey | None,
    tar: bytes,
    *,
    pkginfo: str = PKGINFO,
    control_end: bool = False,
    sign_end: bool = False,
    sign_name: str | None = None,
) -> bytes:
    """Assemble an apk from a raw data tar, signed by ``key`` (None: unsigned).

    ``{datahash}`` in ``pkginfo`` is replaced by the real hash of the data member.
    """
    data_gz = gzip_member(tar)
    text = pkginfo.replace("{datahash}", hashlib.sha256(data_gz).hexdigest()).encode()
    control = tar_entry(regular_info(".PKGINFO", len(text)), text)
    control_gz = gzip_member(control + (END_OF_ARCHIVE if control_end else b""))
    if key is None:
        return control_gz + data_gz
    signature = key.sign(control_gz)
    name = sign_name or f".SIGN.RSA.{key.public_name}"
    sign = tar_entry(regular_info(name, len(signature)), signature)
    return gzip_member(sign + (END_OF_ARCHIVE if sign_end else b"")) + control_gz + data_gz


def gzip_members(data: bytes) -> list[bytes]:
    """The compressed bytes of each gzip member of an apk or index."""
    return [member.compressed for member in split_gzip_members(data, "test")]


def raw_members(data: bytes) -> list[bytes]:
    """The inflated bytes of each gzip member of an apk or index."""
    return [member.raw for member in split_gzip_members(data, "test")]
