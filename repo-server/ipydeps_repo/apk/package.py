"""Write and read apk v2 packages: signature, control and data gzip members."""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ApkFormatError
from .archive import (
    END_OF_ARCHIVE,
    GzipMember,
    TarEntry,
    gzip_member,
    q1_checksum,
    read_tar,
    regular_info,
    split_gzip_members,
    tar_entry,
)
from .keys import SIGNATURE_HASHES, SigningKey, signature_type
from .pkginfo import PkgInfo, parse_pkginfo

EntryKind = Literal["file", "dir", "symlink", "hardlink"]
CHECKSUM_KEY = "APK-TOOLS.checksum.SHA1"
SCRIPTS = (
    ".pre-install",
    ".post-install",
    ".pre-deinstall",
    ".post-deinstall",
    ".pre-upgrade",
    ".post-upgrade",
    ".trigger",
)
_DEFAULT_MODES = {"file": 0o644, "dir": 0o755, "symlink": 0o777, "hardlink": 0o644}
_KINDS = {b"5": "dir", b"2": "symlink", b"1": "hardlink", b"0": "file", b"\0": "file", b"7": "file"}


@dataclass(frozen=True)
class ApkEntry:
    """One item of the installed tree; ``path`` is relative to / (``usr/bin/x``)."""

    path: str
    kind: EntryKind = "file"
    data: bytes = field(default=b"", repr=False)
    target: str = ""  # symlink target, or the earlier entry a hardlink points to
    mode: int = -1  # -1: 0644 for files, 0755 for directories, 0777 for symlinks
    mtime: int = 0
    checksum: str | None = None  # the SHA-1 from the PAX header, as read from a package

    def __post_init__(self) -> None:
        """Fill in the default mode for the kind."""
        if self.mode < 0:
            object.__setattr__(self, "mode", _DEFAULT_MODES[self.kind])

    @classmethod
    def file(cls, path: str, data: bytes, *, mode: int = 0o644, mtime: int = 0) -> ApkEntry:
        """Return a regular file entry."""
        return cls(path, "file", data, mode=mode, mtime=mtime)

    @classmethod
    def directory(cls, path: str, *, mode: int = 0o755, mtime: int = 0) -> ApkEntry:
        """Return a directory entry."""
        return cls(path, "dir", mode=mode, mtime=mtime)

    @classmethod
    def symlink(cls, path: str, target: str, *, mtime: int = 0) -> ApkEntry:
        """Return a symlink entry pointing at ``target``."""
        return cls(path, "symlink", target=target, mtime=mtime)


@dataclass(frozen=True)
class ApkSignature:
    """One ``.SIGN.<type>.<key_name>`` entry; ``key_name`` is a file name in /etc/apk/keys."""

    type: str
    key_name: str
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class ApkPackage:
    """A parsed .apk: metadata, identity, signatures, control files and data entries."""

    info: PkgInfo
    control_checksum: str  # index C: "Q1..." (SHA-1 of the control member)
    file_size: int  # index S:
    signatures: tuple[ApkSignature, ...]
    control_files: tuple[tuple[str, bytes], ...] = field(repr=False)  # (.PKGINFO, scripts...)
    entries: tuple[ApkEntry, ...] = field(repr=False)
    data_hash: str = ""  # SHA-256 of the data member(s) as found (compare with info.datahash)
    signed_data: bytes = field(default=b"", repr=False)  # what the signatures cover

    @property
    def filename(self) -> str:
        """The repository file name, ``<pkgname>-<pkgver>.apk``."""
        return self.info.filename

    @property
    def signature_keys(self) -> tuple[tuple[str, str], ...]:
        """(type, key file name) of each signature, e.g. ``("RSA", "x-1a2b3c4d.rsa.pub")``."""
        return tuple((signature.type, signature.key_name) for signature in self.signatures)


def _path_problems(path: str) -> list[str]:
    if not path or path.startswith(("/", ".")) or path.endswith("/"):
        return [f"{path!r}: paths must be relative to / without a leading '/', '.' or './'"]
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return [f"{path!r}: empty, '.' or '..' path components are not allowed"]
    return []


def complete_tree(entries: Iterable[ApkEntry]) -> list[ApkEntry]:
    """Return entries with every missing ancestor directory added, parents first, sorted.

    Raises:
        ApkFormatError: for bad paths, duplicates, hardlinks, or a file used as a directory.
    """
    problems: list[str] = []
    by_path: dict[str, ApkEntry] = {}
    for entry in entries:
        path = entry.path.rstrip("/") if entry.kind == "dir" else entry.path
        path_problems = _path_problems(path)
        problems += path_problems
        if path_problems:
            continue
        if entry.kind == "hardlink":
            problems.append(f"{path!r}: hardlinks are not supported; store a copy")
        if path in by_path:
            problems.append(f"{path!r}: appears twice")
        by_path[path] = dataclasses.replace(entry, path=path)
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent:
            existing = by_path.setdefault(parent, ApkEntry.directory(parent))
            if existing.kind != "dir":
                problems.append(f"{parent!r} is a {existing.kind} but holds {path!r}")
            parent = posixpath.dirname(parent)
    if problems:
        raise ApkFormatError("package contents", problems)
    return sorted(by_path.values(), key=lambda entry: entry.path.split("/"))


def _data_tar(entries: list[ApkEntry]) -> bytes:
    chunks: list[bytes] = []
    for entry in entries:
        info = tarfile.TarInfo(entry.path)
        info.mode, info.mtime = entry.mode & 0o7777, entry.mtime
        info.uname = info.gname = "root"
        if entry.kind == "dir":
            info.type = tarfile.DIRTYPE
        elif entry.kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, entry.target
            # apk stores the SHA-1 of the link target for symlinks.
            info.pax_headers = {CHECKSUM_KEY: hashlib.sha1(entry.target.encode()).hexdigest()}
        else:
            info.size = len(entry.data)
            info.pax_headers = {CHECKSUM_KEY: hashlib.sha1(entry.data).hexdigest()}
        chunks.append(tar_entry(info, entry.data if entry.kind == "file" else b""))
    return b"".join(chunks) + END_OF_ARCHIVE


def build_apk(
    entries: Iterable[ApkEntry],
    info: PkgInfo,
    key: SigningKey,
    *,
    scripts: Mapping[str, bytes] | None = None,
    hash_name: str = "sha1",
    compresslevel: int = 9,
) -> bytes:
    """Build a signed .apk holding ``entries`` (missing parent directories are added).

    ``info.size`` and ``info.datahash`` are computed here; the signature entry is named
    ``.SIGN.RSA.<key.public_name>``, the file name apk looks up in /etc/apk/keys.

    Raises:
        ApkFormatError: for bad entries, unknown script names, or an invalid ``info``.
        ConfigurationError: for an unusable key or hash name.
    """
    tree = complete_tree(entries)
    unknown = sorted(set(scripts or {}) - set(SCRIPTS))
    if unknown:
        raise ApkFormatError("package scripts", [f"unknown script name {n!r}" for n in unknown])
    data_gz = gzip_member(_data_tar(tree), compresslevel)
    installed = sum(len(e.data) if e.kind == "file" else len(e.target) for e in tree)
    info = dataclasses.replace(
        info, size=max(installed, 1), datahash=hashlib.sha256(data_gz).hexdigest()
    )
    pkginfo = info.render().encode()
    control = tar_entry(regular_info(".PKGINFO", len(pkginfo), mtime=info.builddate), pkginfo)
    for name in SCRIPTS:
        if scripts and name in scripts:
            script_info = regular_info(name, len(scripts[name]), mode=0o755, mtime=info.builddate)
            control += tar_entry(script_info, scripts[name])
    control_gz = gzip_member(control)
    signature = key.sign(control_gz, hash_name)
    sign_name = f".SIGN.{signature_type(hash_name)}.{key.public_name}"
    sign_gz = gzip_member(tar_entry(regular_info(sign_name, len(signature)), signature))
    return sign_gz + control_gz + data_gz


def _entry_from_tar(item: TarEntry) -> ApkEntry | None:
    kind = _KINDS.get(item.type)
    if kind is None:
        return None
    return ApkEntry(
        path=item.name.rstrip("/") if kind == "dir" else item.name,
        kind=kind,  # type: ignore[arg-type]
        data=item.data if kind == "file" else b"",
        target=item.linkname if kind in ("symlink", "hardlink") else "",
        mode=item.mode,
        mtime=item.mtime,
        checksum=item.pax.get(CHECKSUM_KEY),
    )


def is_signature_section(member: GzipMember) -> bool:
    """Return True if the gzip member is a signature tar (its first entry is ``.SIGN.*``)."""
    entries = read_tar(member.raw, "first section").entries
    return bool(entries) and entries[0].name.startswith(".SIGN.")


def read_signature_section(member: GzipMember) -> tuple[list[ApkSignature], list[str]]:
    """Return the ``.SIGN.*`` entries of a signature member and its problems."""
    stream = read_tar(member.raw, "signature section")
    problems = list(stream.problems)
    if stream.has_end_marker:
        problems.append("signature section ends with end-of-archive blocks (apk: BAD archive)")
    signatures: list[ApkSignature] = []
    for item in stream.entries:
        _, sign_type, key_name = (item.name.split(".", 3) + ["", ""])[1:4]
        if not item.name.startswith(".SIGN.") or sign_type not in SIGNATURE_HASHES:
            problems.append(f"signature section: unexpected entry {item.name!r}")
        elif not key_name or "/" in key_name:
            problems.append(f"signature section: bad key file name in {item.name!r}")
        else:
            signatures.append(ApkSignature(sign_type, key_name, item.data))
    return signatures, problems


def _pkginfo(data: bytes, problems: list[str]) -> PkgInfo | None:
    try:
        return parse_pkginfo(data.decode())
    except UnicodeDecodeError as error:
        problems.append(f".PKGINFO is not UTF-8: {error}")
    except ApkFormatError as error:
        problems += [f".PKGINFO: {problem}" for problem in error.problems]
    return None


def inspect_apk(data: bytes, subject: str = "apk") -> tuple[ApkPackage | None, list[str]]:
    """Parse an .apk and list every structural problem; the package is None if unreadable.

    Raises:
        ApkFormatError: only if the bytes are not gzip members at all (or are truncated).
    """
    members = split_gzip_members(data, subject)
    signatures: list[ApkSignature] = []
    problems: list[str] = []
    if is_signature_section(members[0]):
        signatures, problems = read_signature_section(members[0])
        members = members[1:]
    if len(members) < 2:
        return None, [*problems, "expected a control and a data gzip member after the signature"]
    control = read_tar(members[0].raw, "control section")
    problems += control.problems
    if control.has_end_marker:
        problems.append("control section ends with end-of-archive blocks (apk: BAD archive)")
    names = [item.name for item in control.entries]
    if names[:1] != [".PKGINFO"]:
        problems.append(f"control section must start with .PKGINFO, found {names[:1]}")
    problems += [
        f"control section: {name!r} is not a top-level dot-file (apk would read it as data)"
        for name in names
        if not name.startswith(".") or "/" in name
    ]
    data_stream = read_tar(b"".join(m.raw for m in members[1:]), "data section")
    problems += data_stream.problems
    if not data_stream.has_end_marker:
        problems.append("data section has no end-of-archive blocks")
    entries = [_entry_from_tar(item) for item in data_stream.entries]
    problems += [
        f"data section: {item.name!r} has unsupported tar type {item.type!r}"
        for item, entry in zip(data_stream.entries, entries, strict=True)
        if entry is None
    ]
    info = _pkginfo(control.entries[0].data, problems) if names[:1] == [".PKGINFO"] else None
    if info is None:
        return None, problems
    data_gz = b"".join(m.compressed for m in members[1:])
    # Legacy packages (no datahash) are identified and signed over control + data.
    signed = members[0].compressed + (b"" if info.datahash else data_gz)
    package = ApkPackage(
        info=info,
        control_checksum=q1_checksum(signed),
        file_size=len(data),
        signatures=tuple(signatures),
        control_files=tuple((item.name, item.data) for item in control.entries),
        entries=tuple(e for e in entries if e is not None),
        data_hash=hashlib.sha256(data_gz).hexdigest(),
        signed_data=signed,
    )
    return package, problems


def read_apk(data: bytes, subject: str = "apk") -> ApkPackage:
    """Parse an .apk without checking signatures or file contents.

    Raises:
        ApkFormatError: listing every structural problem found (members, cut tars,
            .PKGINFO first, tar headers, .PKGINFO contents).
    """
    package, problems = inspect_apk(data, subject)
    if problems or package is None:
        raise ApkFormatError(subject, problems or ["unreadable package"])
    return package
