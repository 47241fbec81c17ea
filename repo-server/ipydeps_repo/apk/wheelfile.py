"""Read a wheel for wrapping: name, tags, metadata and files, checked against its RECORD."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ..errors import ValidationError

# Refuse wheels that inflate beyond this (a zip bomb guard; SciPy's wheel is ~110 MB).
MAX_WHEEL_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class WheelContents:
    """A wheel's identity, metadata and files (zip path -> bytes)."""

    filename: str
    name: NormalizedName
    version: Version
    tags: frozenset[Tag]
    dist_info: str  # "<name>-<version>.dist-info"
    purelib: bool  # Root-Is-Purelib
    metadata: Message = field(repr=False)
    files: dict[str, bytes] = field(repr=False)

    @property
    def data_dir(self) -> str:
        """The ``<name>-<version>.data`` directory name."""
        return self.dist_info[: -len(".dist-info")] + ".data"

    def metadata_values(self, key: str) -> list[str]:
        """Return every value of a METADATA header (e.g. ``Requires-Dist``)."""
        return [str(value) for value in self.metadata.get_all(key) or []]


def record_hash(data: bytes) -> str:
    """Return a RECORD hash field: ``sha256=<urlsafe base64, no padding>``."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _unsafe(name: str) -> bool:
    parts = name.split("/")
    return name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts)


def _record_problems(files: dict[str, bytes], record_path: str) -> list[str]:
    """Check every file against RECORD (PEP 376/427), as installers do."""
    problems: list[str] = []
    rows = list(csv.reader(io.StringIO(files[record_path].decode("utf-8", "replace"))))
    listed: set[str] = set()
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            problems.append(f"RECORD row {row!r} does not have 3 fields")
            continue
        path, hash_field, _size = row
        listed.add(path)
        if path not in files:
            problems.append(f"RECORD lists {path!r}, which the wheel lacks")
        elif hash_field:
            algorithm, _, _value = hash_field.partition("=")
            if algorithm != "sha256":
                problems.append(f"RECORD uses {algorithm!r} for {path!r}; expected sha256")
            elif record_hash(files[path]) != hash_field:
                problems.append(f"{path!r} does not match its RECORD hash")
        elif path != record_path and not path.endswith((".dist-info/RECORD.jws", ".p7s")):
            problems.append(f"RECORD has no hash for {path!r}")
    problems += [f"{name!r} is not listed in RECORD" for name in sorted(set(files) - listed)]
    return problems


def _identity_problems(metadata: Message, name: str, version: Version) -> list[str]:
    problems = []
    if canonicalize_name(str(metadata.get("Name", ""))) != name:
        problems.append(f"METADATA Name {metadata.get('Name')!r} does not match the file name")
    try:
        same_version = Version(str(metadata.get("Version", ""))) == version
    except InvalidVersion:
        same_version = False
    if not same_version:
        problems.append(
            f"METADATA Version {metadata.get('Version')!r} does not match the file name"
        )
    return problems


def read_wheel(path: Path | str) -> WheelContents:
    """Open a wheel and check its name, layout, METADATA and RECORD.

    Raises:
        ValidationError: listing every problem: bad file name, unsafe member paths,
            missing or mismatched .dist-info, files that do not match RECORD, zip bombs.
    """
    wheel_path = Path(path)
    subject = wheel_path.name
    try:
        name, version, _build, tags = parse_wheel_filename(wheel_path.name)
    except InvalidWheelFilename as error:
        raise ValidationError(subject, [f"not a wheel file name: {error}"]) from None
    try:
        archive = zipfile.ZipFile(wheel_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValidationError(subject, [f"cannot open the wheel: {error}"]) from None
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        problems = [f"unsafe path {i.filename!r}" for i in entries if _unsafe(i.filename)]
        if sum(info.file_size for info in entries) > MAX_WHEEL_BYTES:
            problems.append(f"inflates to more than {MAX_WHEEL_BYTES} bytes")
        if problems:
            raise ValidationError(subject, problems)
        files = {info.filename: archive.read(info) for info in entries}
    dist_infos = {n.split("/", 1)[0] for n in files if n.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise ValidationError(
            subject, [f"expected one .dist-info directory, found {sorted(dist_infos)}"]
        )
    dist_info = dist_infos.pop()
    for required in ("METADATA", "WHEEL", "RECORD"):
        if f"{dist_info}/{required}" not in files:
            problems.append(f"{dist_info}/{required} is missing")
    if problems:
        raise ValidationError(subject, problems)
    metadata = HeaderParser().parsestr(files[f"{dist_info}/METADATA"].decode("utf-8", "replace"))
    wheel_info = HeaderParser().parsestr(files[f"{dist_info}/WHEEL"].decode("utf-8", "replace"))
    problems += _identity_problems(metadata, name, version)
    problems += _record_problems(files, f"{dist_info}/RECORD")
    if problems:
        raise ValidationError(subject, problems)
    return WheelContents(
        filename=wheel_path.name,
        name=name,
        version=version,
        tags=frozenset(tags),
        dist_info=dist_info,
        purelib=str(wheel_info.get("Root-Is-Purelib", "true")).strip().lower() == "true",
        metadata=metadata,
        files=files,
    )
