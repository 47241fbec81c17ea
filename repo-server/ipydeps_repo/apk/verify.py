"""Verify apks, APKINDEX.tar.gz files and whole repository directories like apk would."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from ipydeps.formats.apkindex import ApkIndexError, ApkIndexRecord, parse_apkindex

from ..errors import ApkFormatError, SignatureError, ValidationError
from .archive import q1_checksum, read_tar, split_gzip_members
from .keys import SIGNATURE_HASHES, hash_algorithm
from .package import (
    ApkEntry,
    ApkPackage,
    ApkSignature,
    inspect_apk,
    is_signature_section,
    read_signature_section,
)

INDEX_FILE = "APKINDEX.tar.gz"


def check_signatures(
    signatures: Sequence[ApkSignature], signed: bytes, trusted_keys: Mapping[str, RSAPublicKey]
) -> list[str]:
    """Return problems with the signatures over ``signed`` (empty when apk would trust it).

    Like apk, the first signature whose key file name is in ``trusted_keys`` decides.
    """
    if not signatures:
        return ["unsigned: no .SIGN.* entry (apk: UNTRUSTED)"]
    for signature in signatures:
        key = trusted_keys.get(signature.key_name)
        if key is None:
            continue
        try:
            key.verify(
                signature.value,
                signed,
                padding.PKCS1v15(),
                hash_algorithm(SIGNATURE_HASHES[signature.type]),
            )
        except InvalidSignature:
            return [
                f"BAD signature by {signature.key_name}: the signed section changed after "
                "signing, or a different key is stored under that file name"
            ]
        return []
    names = ", ".join(sorted(s.key_name for s in signatures))
    trusted = ", ".join(sorted(trusted_keys)) or "none"
    return [f"signed by untrusted key(s) {names} (trusted: {trusted}) (apk: UNTRUSTED)"]


def _entry_problems(package: ApkPackage) -> list[str]:
    problems: list[str] = []
    seen: dict[str, str] = {}
    for entry in package.entries:
        path = entry.path
        where = f"data entry {entry.path!r}"
        if entry.path.startswith("./"):
            problems.append(f"{where}: './' prefix (apk silently installs nothing for it)")
        elif entry.path.startswith("/"):
            problems.append(f"{where}: absolute path")
        elif entry.path.startswith("."):
            problems.append(f"{where}: starts with '.', apk silently skips it")
        if any(part in ("", ".", "..") for part in path.split("/")):
            problems.append(f"{where}: empty, '.' or '..' path component")
        parent = posixpath.dirname(path)
        if parent not in ("", ".") and seen.get(parent) != "dir":
            problems.append(
                f"{where}: no directory entry for its parent {parent!r} before it "
                "(apk: no dirent in archive)"
            )
        if path in seen:
            problems.append(f"{where}: appears twice")
        seen[path] = entry.kind
        problems += _checksum_problems(entry, where, seen)
    return problems


def _checksum_problems(entry: ApkEntry, where: str, seen: Mapping[str, str]) -> list[str]:
    if entry.kind == "dir":
        return []
    if entry.kind == "hardlink":
        ok = seen.get(entry.target) == "file"
        return [] if ok else [f"{where}: hardlink to {entry.target!r}, not an earlier file"]
    content = entry.data if entry.kind == "file" else entry.target.encode()
    actual = hashlib.sha1(content).hexdigest()
    if entry.checksum is None:
        return [f"{where}: no APK-TOOLS.checksum.SHA1 PAX header (apk add would fail)"]
    if entry.checksum != actual:
        return [f"{where}: APK-TOOLS.checksum.SHA1 is {entry.checksum}, content has {actual}"]
    return []


def _raise(subject: str, signature_problems: list[str], format_problems: list[str]) -> None:
    if signature_problems:
        raise SignatureError(
            subject,
            signature_problems + format_problems,
            hint="rebuild and re-sign it, and check the keys directory",
        )
    if format_problems:
        raise ApkFormatError(subject, format_problems)


def verify_apk(
    data: bytes, trusted_keys: Mapping[str, RSAPublicKey], *, subject: str = "apk"
) -> ApkPackage:
    """Check an .apk completely: structure, signature, datahash and every data entry.

    Raises:
        SignatureError: unsigned, untrusted key, BAD signature (control changed), or a
            datahash mismatch (data changed after signing); lists format problems too.
        ApkFormatError: every other problem: member layout, tars that are not cut,
            ``./``, absolute or ``..`` paths, missing parent directory entries, missing
            or wrong PAX checksums, size 0, no datahash, truncated file.
    """
    package, problems = inspect_apk(data, subject)
    if package is None:
        raise ApkFormatError(subject, problems)
    signature_problems = check_signatures(package.signatures, package.signed_data, trusted_keys)
    if not package.info.datahash:
        problems.append("no datahash in .PKGINFO (legacy package); rebuild it")
    elif package.info.datahash != package.data_hash:
        signature_problems.append(
            f"datahash mismatch: .PKGINFO says {package.info.datahash}, the data section "
            f"hashes to {package.data_hash} (data changed after signing)"
        )
    problems += _entry_problems(package)
    _raise(subject, signature_problems, problems)
    return package


def verify_index(
    data: bytes, trusted_keys: Mapping[str, RSAPublicKey], *, subject: str = INDEX_FILE
) -> tuple[str | None, list[ApkIndexRecord]]:
    """Check a signed APKINDEX.tar.gz and return (DESCRIPTION, records).

    Raises:
        SignatureError: unsigned, untrusted, or BAD signature over the index member.
        ApkFormatError: wrong member count, tars not cut / not ended, missing APKINDEX,
            malformed records (no C:/P:/V:, no trailing blank line, CR characters).
    """
    members = split_gzip_members(data, subject)
    problems: list[str] = []
    signatures: list[ApkSignature] = []
    if is_signature_section(members[0]):
        signatures, problems = read_signature_section(members[0])
        members = members[1:]
    if len(members) != 1:
        problems.append(f"expected one index gzip member after the signature, found {len(members)}")
        raise ApkFormatError(subject, problems)
    signature_problems = check_signatures(signatures, members[0].compressed, trusted_keys)
    stream = read_tar(members[0].raw, "index section")
    problems += stream.problems
    if not stream.has_end_marker:
        problems.append("index section has no end-of-archive blocks")
    files = {item.name: item.data for item in stream.entries}
    problems += [
        f"unexpected index entry {n!r}" for n in files if n not in ("APKINDEX", "DESCRIPTION")
    ]
    records: list[ApkIndexRecord] = []
    if "APKINDEX" not in files:
        problems.append("no APKINDEX entry")
    else:
        try:
            records = parse_apkindex(files["APKINDEX"].decode())
        except ApkIndexError as error:
            problems += error.problems
        except UnicodeDecodeError as error:
            problems.append(f"APKINDEX is not UTF-8: {error}")
    _raise(subject, signature_problems, problems)
    description = files.get("DESCRIPTION")
    return (description.decode(errors="replace") if description is not None else None), records


def verify_repository(
    directory: Path | str, trusted_keys: Mapping[str, RSAPublicKey]
) -> list[ApkIndexRecord]:
    """Verify ``<directory>/APKINDEX.tar.gz`` and every package it lists beside it.

    Each record's C: must equal the control checksum of ``<P>-<V>.apk`` and S: its size;
    each package must pass :func:`verify_apk`.

    Raises:
        SignatureError: if the index or any package fails a signature/hash check.
        ApkFormatError: for a malformed index or package.
        ValidationError: for missing package files or C:/S: mismatches (listing all).
    """
    folder = Path(directory)
    index_path = folder / INDEX_FILE
    if not index_path.is_file():
        raise ValidationError(str(folder), [f"no {INDEX_FILE}"])
    _, records = verify_index(index_path.read_bytes(), trusted_keys, subject=str(index_path))
    problems: list[str] = []
    signature_problems: list[str] = []
    for record in records:
        path = folder / record.filename
        if "/" in record.filename or not path.is_file():
            problems.append(f"{record.filename}: listed in the index but missing")
            continue
        data = path.read_bytes()
        try:
            package = verify_apk(data, trusted_keys, subject=record.filename)
        except SignatureError as error:
            signature_problems += [f"{record.filename}: {p}" for p in error.problems]
            continue
        except ApkFormatError as error:
            problems += [f"{record.filename}: {p}" for p in error.problems]
            continue
        if record.checksum != package.control_checksum:
            signature_problems.append(
                f"{record.filename}: index C:{record.checksum} but the package has "
                f"{package.control_checksum} (apk: BAD signature)"
            )
        if record.size != len(data):
            problems.append(
                f"{record.filename}: index S:{record.size} but the file has {len(data)} bytes"
            )
    if signature_problems:
        raise SignatureError(str(folder), signature_problems + problems)
    if problems:
        raise ValidationError(str(folder), problems)
    return records


__all__ = ["check_signatures", "q1_checksum", "verify_apk", "verify_index", "verify_repository"]
