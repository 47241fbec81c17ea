"""Build signed APKINDEX.tar.gz files from packages or index records."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

from ipydeps.formats.apkindex import ApkIndexError, ApkIndexRecord, render_apkindex

from ..errors import ApkFormatError
from .archive import (
    END_OF_ARCHIVE,
    gzip_member,
    q1_checksum,
    read_tar,
    regular_info,
    split_gzip_members,
    tar_entry,
)
from .keys import SigningKey, signature_type
from .package import ApkPackage, is_signature_section
from .pkginfo import PkgInfo, parse_pkginfo


def index_record(package: ApkPackage) -> ApkIndexRecord:
    """Return the APKINDEX record of a package, as ``apk index`` would write it."""
    return _record(package.info, package.control_checksum, package.file_size)


def index_record_of_file(data: bytes, *, subject: str = "apk") -> ApkIndexRecord:
    """Return the record of an already verified .apk, inflating only its control member.

    Fast for big packages (the data member is not read): use it to re-index files
    that passed ``verify_apk`` when they were published.

    Raises:
        ApkFormatError: if the control member is missing, has no .PKGINFO first, or the
            .PKGINFO is invalid or has no datahash.
    """
    members = split_gzip_members(data, subject, limit=2)
    control = members[-1] if is_signature_section(members[0]) else members[0]
    entries = read_tar(control.raw, "control section").entries
    if len(members) < 2 or not entries or entries[0].name != ".PKGINFO":
        raise ApkFormatError(subject, ["no control section starting with .PKGINFO"])
    try:
        info = parse_pkginfo(entries[0].data.decode())
    except UnicodeDecodeError as error:
        raise ApkFormatError(subject, [f".PKGINFO is not UTF-8: {error}"]) from None
    if not info.datahash:
        raise ApkFormatError(subject, ["no datahash in .PKGINFO (legacy package)"])
    return _record(info, q1_checksum(control.compressed), len(data))


def _record(info: PkgInfo, checksum: str, size: int) -> ApkIndexRecord:
    return ApkIndexRecord(
        checksum=checksum,
        name=info.pkgname,
        version=info.pkgver,
        arch=info.arch,
        size=size,
        installed_size=info.size,
        description=info.pkgdesc,
        url=info.url,
        license=info.license,
        origin=info.origin,
        maintainer=info.maintainer,
        build_time=info.builddate,
        commit=info.commit,
        provider_priority=info.provider_priority,
        depends=info.depends,
        provides=info.provides,
        install_if=info.install_if,
    )


def index_records(
    packages: Iterable[ApkPackage | ApkIndexRecord], *, arch: str
) -> list[ApkIndexRecord]:
    """Return records for an ``arch`` index; ``noarch`` ones get ``A:<arch>``.

    apk fetches a package from ``<repo>/<A:>/``, so noarch packages kept in the arch
    directory must say ``A:<arch>``, as ``apk index --rewrite-arch`` writes them.

    Raises:
        ApkFormatError: for a package of another architecture, or the same name and
            version twice.
    """
    problems: list[str] = []
    records: dict[tuple[str, str], ApkIndexRecord] = {}
    for item in packages:
        record = index_record(item) if isinstance(item, ApkPackage) else item
        if record.arch in ("noarch", ""):
            record = dataclasses.replace(record, arch=arch)
        elif record.arch != arch:
            problems.append(f"{record.filename} is for {record.arch}, not {arch}")
        key = (record.name, record.version)
        if key in records:
            problems.append(f"{record.filename} is listed twice")
        records[key] = record
    if problems:
        raise ApkFormatError(f"{arch} index", problems)
    return list(records.values())


def build_index(
    packages: Iterable[ApkPackage | ApkIndexRecord],
    key: SigningKey,
    *,
    arch: str,
    description: str | None = None,
    hash_name: str = "sha1",
) -> bytes:
    """Return a signed APKINDEX.tar.gz listing ``packages`` (ApkPackage or ready records).

    Layout: GZ(cut tar with ``.SIGN.RSA.<key.public_name>``) + GZ(tar with DESCRIPTION
    and APKINDEX, with end blocks); the signature covers the second member's bytes.

    Raises:
        ApkFormatError: for records apk cannot read (see ``render_record``), packages of
            another architecture, or duplicates.
    """
    records = index_records(packages, arch=arch)
    try:
        text = render_apkindex(records).encode()
    except ApkIndexError as error:
        raise ApkFormatError(f"{arch} index", error.problems) from None
    body = b""
    if description is not None:
        if "\n" in description:
            raise ApkFormatError(f"{arch} index", ["description must be one line"])
        body += tar_entry(
            regular_info("DESCRIPTION", len(description.encode())), description.encode()
        )
    body += tar_entry(regular_info("APKINDEX", len(text)), text) + END_OF_ARCHIVE
    index_gz = gzip_member(body)
    signature = key.sign(index_gz, hash_name)
    sign_name = f".SIGN.{signature_type(hash_name)}.{key.public_name}"
    return gzip_member(tar_entry(regular_info(sign_name, len(signature)), signature)) + index_gz


def build_directory_index(
    directory: Path | str,
    key: SigningKey,
    *,
    arch: str,
    description: str | None = None,
    hash_name: str = "sha1",
) -> bytes:
    """Return a signed APKINDEX.tar.gz for every ``*.apk`` in ``directory`` (not written).

    Each file must be named ``<P>-<V>.apk`` after its own .PKGINFO, since apk fetches
    it by that name.

    Raises:
        ApkFormatError: for a package that cannot be indexed or is misnamed (all listed).
    """
    problems: list[str] = []
    records: list[ApkIndexRecord] = []
    for path in sorted(Path(directory).glob("*.apk")):
        try:
            record = index_record_of_file(path.read_bytes(), subject=path.name)
        except ApkFormatError as error:
            problems += [f"{path.name}: {problem}" for problem in error.problems]
            continue
        if record.filename != path.name:
            problems.append(f"{path.name}: its .PKGINFO names it {record.filename}")
        records.append(record)
    if problems:
        raise ApkFormatError(f"{arch} index", problems)
    return build_index(records, key, arch=arch, description=description, hash_name=hash_name)
