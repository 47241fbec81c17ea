"""A streamed stored copy's members, and the checks on them once the whole copy is in.

``wheelstream.py`` walks the copy as it arrives and writes each member; these checks run in
its ``finish``, after the download is verified: the central directory must describe exactly
the members written (what pip, uv or ``zipfile`` would install), and each member's bytes
must have the hash and size its RECORD gives.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from ..errors import InvalidWheelError, RecordMismatchError
from ..formats.errors import FormatError
from ..formats.records import RecordFile, record_hash
from ..formats.wheel import find_dist_info, read_wheel_file
from ..formats.ziplayout import DamagedZipError, Zip64Error, read_central_directory
from .staging import StagingDestination

__all__ = [
    "StreamMember",
    "StreamingUnsupported",
    "check_central_directory",
    "check_metadata",
    "check_record",
    "refused",
]

_HOSTILE = "the wheel is malformed or hostile; tell its publisher"


class StreamingUnsupported(Exception):
    """Raised for an archive that cannot be installed in stream order: use the wheel."""


@dataclass(slots=True)
class StreamMember:
    """One member as the stream brought it: where it went, and the hashes of its bytes."""

    name: str
    offset: int  # stream offset of its local header
    crc: int
    size: int
    destination: str | None  # written to this file as it arrives
    keep: bool  # also kept in memory: WHEEL, entry_points.txt, RECORD, scripts
    installed: str = ""  # its path in the installed RECORD
    script: PurePosixPath | None = None  # a script: its path in the scripts directory
    handle: int = -1
    written: int = 0
    running_crc: int = 0
    parts: list[bytes] = field(default_factory=list)
    # The sha256 of its bytes as they are written: the installed RECORD says what is on disk,
    # RECORD is checked with it, and the copy's outline takes it (formats/outline.py).
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    record: str = ""  # ``digest`` in RECORD's form, once worked out


def refused(filename: str, reason: str) -> InvalidWheelError:
    """Return the error of a wheel refused for ``reason``."""
    return InvalidWheelError(f"Refused {filename}: {reason}", hint=_HOSTILE)


def check_central_directory(
    filename: str, tail: bytes, tail_offset: int | None, members: Sequence[StreamMember]
) -> set[str]:
    """Return the members marked executable, once the central directory is checked.

    ``tail`` is the archive from its central directory on, at ``tail_offset``. It must
    describe exactly the ``members`` written, at the offsets where they were.
    """
    try:
        entries = read_central_directory(tail, tail_offset or 0)
    except Zip64Error as error:
        raise StreamingUnsupported(str(error)) from None
    except DamagedZipError as error:
        raise InvalidWheelError(f"{filename}: {error.message}") from None
    listed = sorted((e.name, e.header_offset, e.crc, e.compressed_size, e.size) for e in entries)
    seen = [(m.name, m.offset, m.crc, m.size, m.size) for m in members]
    if listed != sorted(seen) or len({m.name for m in members}) != len(seen):
        raise refused(filename, "its central directory does not match its members")
    return {entry.name for entry in entries if entry.executable}


def check_record(
    filename: str,
    record: RecordFile,
    members: Sequence[StreamMember],
    kept: Mapping[str, bytes],
) -> None:
    """Refuse a member whose bytes do not have the hash and size its RECORD gives.

    RECORD's rules are ``ipydeps.formats.records``': a member it leaves out is installed
    (the installed RECORD gets the hash of what was written). ``kept`` holds the members
    kept in memory (scripts among them), by name.
    """
    if record.problems:
        raise refused(filename, "; ".join(record.problems))
    for member in members:
        expected = record.hash_of(member.name)
        if not expected or (member.destination is None and member.script is None):
            continue
        algorithm = expected.partition("=")[0]
        digest = member.digest if algorithm == "sha256" else _rehash(member, kept, algorithm)
        actual = record_hash(digest)
        if digest is member.digest:
            member.record = actual
        if actual != expected:
            raise RecordMismatchError(filename, member.name, expected, actual)
        problem = record.size_problem(member.name, member.size)
        if problem is not None:
            raise refused(filename, problem)


def _rehash(member: StreamMember, kept: Mapping[str, bytes], algorithm: str) -> hashlib._Hash:
    """Hash a member again with another algorithm (rare: RECORDs use sha256)."""
    digest = hashlib.new(algorithm)
    if member.destination is None:
        digest.update(kept.get(member.name, b""))
        return digest
    with open(member.destination, "rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest


def check_metadata(
    filename: str,
    members: Sequence[StreamMember],
    kept: Mapping[str, bytes],
    destination: StagingDestination,
    *,
    data_dir: str | None,
    lib: str | None,
) -> str:
    """Return the wheel's .dist-info folder, once it and WHEEL check out.

    ``data_dir`` is the ``.data`` directory the stream met; ``lib`` the lib directory
    ("purelib" or "platlib") the members went to, where the two differ (else None): WHEEL
    must agree, or the wheel is left to the wheel installer.
    """
    try:
        dist_info = find_dist_info((m.name for m in members), filename)
    except FormatError as error:
        raise refused(filename, error.message) from None
    destination.staged.dist_info = dist_info.folder
    if data_dir is not None and data_dir != dist_info.data_dir:
        raise StreamingUnsupported("a .data directory that is not the wheel's own")
    wheel_file = kept.get(f"{dist_info.folder}/WHEEL")
    if wheel_file is None:
        raise InvalidWheelError(f"{filename}: no {dist_info.folder}/WHEEL")
    facts = read_wheel_file(wheel_file)
    if facts.problem is not None:
        raise InvalidWheelError(f"{filename}: {facts.problem}")
    if lib is not None and facts.root_category != lib:
        raise StreamingUnsupported("Root-Is-Purelib differs from the wheel's tags")
    return dist_info.folder
