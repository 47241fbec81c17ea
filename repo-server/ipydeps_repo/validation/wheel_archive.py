"""Structural checks of an uploaded wheel's zip archive, streaming and bounded.

A hostile upload is refused here before anything is written: member paths that escape
(zip-slip, absolute, ``C:``), duplicate members, local headers that disagree with the
central directory or bytes no member owns (what a client reading the stream would see
differently from one reading the directory), compressed data that inflates to more than
its entry says, members whose bytes do not match RECORD, and zip bombs. Every member is
inflated in chunks of at most 1 MiB, and inflating stops as soon as a limit is passed,
so checking a bomb costs the server what the limit allows and no more.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ipydeps.formats.errors import FormatError
from ipydeps.formats.records import RecordFile, parse_record, record_hash, unlisted_problems
from ipydeps.formats.wheel import is_unsafe_path, single_dist_info
from ipydeps.formats.ziplayout import (
    FLAG_DATA_DESCRIPTOR,
    FLAG_ENCRYPTED,
    LOCAL_HEADER,
    ZIP64_LIMIT,
    decode_name,
    read_local_header,
)

DEFAULT_MAX_INFLATED_BYTES = 2 * 1024**3
DEFAULT_MAX_MEMBER_BYTES = 1024**3
DEFAULT_MAX_INFLATE_RATIO = 100
# Below this, the ratio is not looked at: a small wheel of text may compress well.
RATIO_FLOOR_BYTES = 64 * 1024**2
# METADATA, WHEEL and RECORD are held in memory; no honest one comes near this.
MAX_KEPT_BYTES = 32 * 1024**2
MAX_PROBLEMS = 50

_CHUNK = 1024 * 1024
_DESCRIPTOR_SIZES = (12, 16, 20, 24)  # crc + sizes (4 or 8 bytes each), optional signature
_KEPT = ("METADATA", "WHEEL", "RECORD")


@dataclass(frozen=True)
class InflateLimits:
    """How much a wheel may inflate to: in total, per member, and per byte uploaded.

    The total allowed is ``min(total_bytes, max(ratio * archive size, RATIO_FLOOR_BYTES))``.
    """

    total_bytes: int = DEFAULT_MAX_INFLATED_BYTES
    member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
    ratio: int = DEFAULT_MAX_INFLATE_RATIO

    def budget(self, archive_size: int) -> int:
        """Return the most bytes an archive of ``archive_size`` bytes may inflate to."""
        return min(self.total_bytes, max(self.ratio * archive_size, RATIO_FLOOR_BYTES))


@dataclass(frozen=True)
class ArchiveFacts:
    """What the archive check found: every problem, and the ``.dist-info`` files kept."""

    problems: tuple[str, ...]
    dist_info: str | None = None
    kept: dict[str, bytes] = field(default_factory=dict, repr=False)


class _Stop(Exception):
    """A limit was passed: inflating anything more would cost more than the limit allows."""


@dataclass
class _Seen:
    """One member as inflated: its sha256 (RECORD form) and size."""

    record_hash: str
    size: int


def check_archive(stream: BinaryIO, size: int, limits: InflateLimits) -> ArchiveFacts:
    """Check the wheel archive in ``stream`` (``size`` bytes) and return what was found.

    ``problems`` lists every problem (at most ``MAX_PROBLEMS``, then a count of the rest);
    an empty list means the archive is safe to store, copy and serve. ``kept`` holds the
    ``.dist-info`` METADATA, WHEEL and RECORD bytes (by their name without the folder).
    """
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
        return ArchiveFacts((f"the zip archive is damaged: {error}",))
    with archive:
        infos = archive.infolist()
        problems = _name_problems(infos)
        dist_info = _dist_info(infos, problems)
        too_large = _declared_size_problems(infos, limits)
        if too_large:
            # The archive admits it is too large: not one byte of it is inflated.
            return ArchiveFacts(_capped(problems + too_large), dist_info)
        central_end = getattr(archive, "start_dir", size)
        seen: dict[str, _Seen | None] = {}
        kept: dict[str, bytes] = {}
        budget = _Budget(limits.budget(size), limits)
        try:
            _walk_members(stream, infos, central_end, dist_info, seen, kept, budget, problems)
        except _Stop as stop:
            problems.append(str(stop))
            return ArchiveFacts(_capped(problems), dist_info)
        if dist_info is not None and "RECORD" in kept:
            record = parse_record(kept["RECORD"], dist_info)
            problems += _record_problems(
                record, dist_info, seen, _rehashed(stream, infos, record, seen, limits, size)
            )
    if dist_info is not None:
        problems += [f"{dist_info}/{name} is missing" for name in _KEPT if name not in kept]
    return ArchiveFacts(_capped(problems), dist_info, kept)


def _name_problems(infos: list[zipfile.ZipInfo]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for info in infos:
        name = info.orig_filename
        if "\x00" in name:
            problems.append(f"member name {name!r} contains a NUL character")
        elif is_unsafe_path(name):
            problems.append(f"unsafe path {name!r}")
        key = "/".join(part for part in name.split("/") if part not in ("", "."))
        if key in seen:
            problems.append(f"duplicate member {name!r}")
        seen.add(key)
        if info.flag_bits & FLAG_ENCRYPTED:
            problems.append(f"member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(
                f"member {name!r} uses compression method {info.compress_type}; "
                "wheels use deflate or none"
            )
    return problems


def _dist_info(infos: list[zipfile.ZipInfo], problems: list[str]) -> str | None:
    try:
        return single_dist_info(info.filename for info in infos)
    except FormatError as error:
        problems.append(error.message)
        return None


def _declared_size_problems(infos: list[zipfile.ZipInfo], limits: InflateLimits) -> list[str]:
    """Refuse what the central directory itself admits to, before inflating anything."""
    problems = [
        f"member {info.filename!r} would inflate to {info.file_size} bytes, over the "
        f"per-member limit of {limits.member_bytes}"
        for info in infos
        if info.file_size > limits.member_bytes
    ]
    declared = sum(info.file_size for info in infos)
    if declared > limits.total_bytes:
        problems.append(
            f"the wheel would inflate to {declared} bytes, over the limit of {limits.total_bytes}"
        )
    return problems


class _Budget:
    """Counts inflated bytes against the total and per-member limits."""

    def __init__(self, total: int, limits: InflateLimits) -> None:
        self.total = total
        self.limits = limits
        self.used = 0

    def spend(self, count: int, member: str, member_total: int) -> None:
        self.used += count
        if self.used > self.total:
            raise _Stop(
                f"the wheel inflates to more than {self.total} bytes (the limit for an "
                "archive of this size); stopped there"
            )
        if member_total > self.limits.member_bytes:
            raise _Stop(
                f"member {member!r} inflates to more than the per-member limit of "
                f"{self.limits.member_bytes} bytes; stopped there"
            )


def _walk_members(
    stream: BinaryIO,
    infos: list[zipfile.ZipInfo],
    central_end: int,
    dist_info: str | None,
    seen: dict[str, _Seen | None],
    kept: dict[str, bytes],
    budget: _Budget,
    problems: list[str],
) -> None:
    """Check each member's local header and place, then inflate and hash it."""
    expected_offset = 0
    for info in sorted(infos, key=lambda item: item.header_offset):
        name = info.filename
        if info.header_offset > expected_offset:
            problems.append(
                f"{info.header_offset - expected_offset} bytes that no member "
                f"owns come before member {name!r}"
            )
        elif info.header_offset < expected_offset:
            problems.append(f"member {name!r} overlaps the member before it")
        start, header_problem = _local_header(stream, info)
        if header_problem:
            problems.append(header_problem)
            return  # the layout is not what the directory says; reading on would guess
        keep = dist_info is not None and name in {f"{dist_info}/{item}" for item in _KEPT}
        outcome = _inflate(stream, info, start, budget, keep)
        if isinstance(outcome, str):
            problems.append(outcome)
            seen[name] = None  # present but broken: said once, not again against RECORD
        else:
            digest, length, data = outcome
            seen[name] = _Seen(digest, length)
            if data is not None:
                kept[name.rsplit("/", 1)[1]] = data
        expected_offset = start + info.compress_size
        if info.flag_bits & FLAG_DATA_DESCRIPTOR:
            expected_offset = _skip_descriptor(stream, expected_offset, infos, central_end)
    if expected_offset != central_end:
        problems.append(
            f"{central_end - expected_offset} bytes that no member owns come before the "
            "central directory"
        )


def _local_header(stream: BinaryIO, info: zipfile.ZipInfo) -> tuple[int, str | None]:
    """Return where the member's data starts, or a problem with its local header."""
    stream.seek(info.header_offset)
    raw = stream.read(LOCAL_HEADER.size)
    name = info.orig_filename
    if len(raw) != LOCAL_HEADER.size:
        return 0, f"member {name!r}: its local header is cut off"
    header = read_local_header(raw)
    if header is None:
        return 0, f"member {name!r}: no local header where the central directory says"
    local_name = decode_name(stream.read(header.name_length), header.flags, "replace")
    start = info.header_offset + header.length
    disagreements = []
    if local_name != name:
        disagreements.append(f"name {local_name!r}")
    if header.method != info.compress_type:
        disagreements.append(f"compression method {header.method}")
    if not header.flags & FLAG_DATA_DESCRIPTOR:
        # Sizes are in the local header (no data descriptor): a streaming reader uses them.
        for label, local, central in (
            ("CRC", header.crc, info.CRC),
            ("compressed size", header.compressed_size, info.compress_size),
            ("size", header.size, info.file_size),
        ):
            if local != central and local != ZIP64_LIMIT:
                disagreements.append(f"{label} {local}")
    if disagreements:
        return start, (
            f"member {name!r}: the local header disagrees with the central "
            f"directory ({', '.join(disagreements)})"
        )
    return start, None


def _skip_descriptor(
    stream: BinaryIO, offset: int, infos: list[zipfile.ZipInfo], central_end: int
) -> int:
    """Return the offset after a member's data descriptor (whose size depends on the writer)."""
    starts = {info.header_offset for info in infos} | {central_end}
    for size in _DESCRIPTOR_SIZES:
        if offset + size in starts:
            return offset + size
    return offset


class _Broken(Exception):
    """A member's bytes are not what its entry says; the text completes "member 'x'"."""


def _inflate(
    stream: BinaryIO,
    info: zipfile.ZipInfo,
    start: int,
    budget: _Budget,
    keep: bool,
    algorithm: str = "sha256",
) -> tuple[str, int, bytes | None] | str:
    """Inflate one member in bounded chunks; return (RECORD hash, size, bytes kept) or why not.

    The RECORD hash is made with ``algorithm`` (sha256 unless RECORD names another).

    Raises:
        _Stop: the member or the archive passed an inflate limit.
    """
    name = info.filename
    digest = hashlib.new(algorithm)
    crc = 0
    produced = 0
    parts: list[bytes] = []
    try:
        for out in _member_chunks(stream, info, start):
            produced += len(out)
            if produced > info.file_size:
                raise _Broken(
                    f" inflates to more than the {info.file_size} bytes its directory entry says"
                )
            budget.spend(len(out), name, produced)
            crc = zlib.crc32(out, crc)
            digest.update(out)
            if keep:
                if produced > MAX_KEPT_BYTES:
                    raise _Broken(f" is over {MAX_KEPT_BYTES} bytes")
                parts.append(out)
        if produced != info.file_size:
            raise _Broken(f" is {produced} bytes, not the {info.file_size} its entry says")
        if crc != info.CRC:
            raise _Broken(" is damaged (CRC mismatch)")
    except _Broken as broken:
        return f"member {name!r}{broken}"
    if info.is_dir() and produced:
        return f"directory entry {name!r} holds data"
    return record_hash(digest), produced, b"".join(parts) if keep else None


def _member_chunks(stream: BinaryIO, info: zipfile.ZipInfo, start: int) -> Iterator[bytes]:
    """Yield the member's bytes, inflated, at most 1 MiB at a time.

    Raises:
        _Broken: the data is cut off, cannot be inflated, ends early or has a tail.
    """
    raw_chunks = _raw_chunks(stream, start, info.compress_size)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        yield from raw_chunks
        return
    inflater = zlib.decompressobj(-15)
    for raw in raw_chunks:
        pending = raw
        while pending:
            yield _decompress(inflater, pending)
            pending = inflater.unconsumed_tail
    # Output held back by the 1 MiB cap comes out without more input.
    while out := _decompress(inflater, b""):
        yield out
    if not inflater.eof:
        raise _Broken(": its compressed data ends early")
    if inflater.unused_data:
        raise _Broken(": its compressed data has bytes after the end of the stream")


def _raw_chunks(stream: BinaryIO, start: int, size: int) -> Iterator[bytes]:
    stream.seek(start)
    remaining = size
    while remaining:
        raw = stream.read(min(_CHUNK, remaining))
        if not raw:
            raise _Broken(" is cut off")
        remaining -= len(raw)
        yield raw


def _decompress(inflater: Any, data: bytes) -> bytes:
    try:
        return bytes(inflater.decompress(data, _CHUNK))
    except zlib.error as error:
        raise _Broken(f" cannot be inflated ({error})") from None


def _rehashed(
    stream: BinaryIO,
    infos: list[zipfile.ZipInfo],
    record: RecordFile,
    seen: dict[str, _Seen | None],
    limits: InflateLimits,
    size: int,
) -> dict[str, str]:
    """Hash again, with the algorithm RECORD names, the members whose row is not sha256.

    Rare (wheel builders write sha256); each such member is inflated once more, within the
    same limits, and its hash in RECORD's form returned by name.
    """
    budget = _Budget(limits.budget(size), limits)
    found: dict[str, str] = {}
    for info in infos:
        row = record.rows.get(info.filename)
        if row is None or row.algorithm in ("", "sha256") or seen.get(info.filename) is None:
            continue
        start, problem = _local_header(stream, info)
        try:
            outcome = (
                None if problem else _inflate(stream, info, start, budget, False, row.algorithm)
            )
        except _Stop:
            outcome = None
        if isinstance(outcome, tuple):
            found[info.filename] = outcome[0]
    return found


def _record_problems(
    record: RecordFile, dist_info: str, seen: dict[str, _Seen | None], rehashed: dict[str, str]
) -> list[str]:
    """Check every member against RECORD and every RECORD row against the members.

    The rules are ``ipydeps.formats.records``' (what publishes refuses unlisted files).
    """
    problems = list(record.problems)
    for name, member in seen.items():
        if member is not None:
            problem = record.member_problem(
                name, rehashed.get(name, member.record_hash), member.size
            )
            if problem is not None:
                problems.append(problem)
    problems += unlisted_problems(
        record,
        [name for name in seen if not name.endswith("/")],
        dist_info,
        broken=[n for n, m in seen.items() if m is None],
    )
    return problems


def _capped(problems: list[str]) -> tuple[str, ...]:
    if len(problems) <= MAX_PROBLEMS:
        return tuple(problems)
    rest = len(problems) - MAX_PROBLEMS
    return (*problems[:MAX_PROBLEMS], f"... and {rest} more problem(s)")
