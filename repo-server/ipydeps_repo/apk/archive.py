"""Gzip members and tar streams as apk reads them: split, parse, and write "cut" tars."""

from __future__ import annotations

import base64
import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import ApkFormatError

BLOCK = 512
END_OF_ARCHIVE = bytes(2 * BLOCK)
# A package or index is refused when it inflates beyond this (a gzip bomb guard).
MAX_UNPACKED_BYTES = 4 * 1024 * 1024 * 1024
REGULAR_TYPES = (b"0", b"\0", b"7")


@dataclass(frozen=True)
class GzipMember:
    """One gzip member of an .apk or APKINDEX.tar.gz: its bytes as stored, and inflated."""

    compressed: bytes = field(repr=False)
    raw: bytes = field(repr=False)


def gzip_member(raw: bytes, compresslevel: int = 9) -> bytes:
    """Compress ``raw`` into one reproducible gzip member (no name, mtime 0).

    Level 9 is what abuild uses; level 6 is about 3x faster and about 1% larger.
    """
    return gzip.compress(raw, compresslevel=compresslevel, mtime=0)


def q1_checksum(data: bytes) -> str:
    """Return apk's identity checksum text: ``Q1`` + base64(SHA-1(data)), 30 characters."""
    return "Q1" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def split_gzip_members(
    data: bytes, subject: str, *, max_bytes: int = MAX_UNPACKED_BYTES, limit: int | None = None
) -> list[GzipMember]:
    """Split concatenated gzip members, keeping the exact compressed bytes of each.

    With ``limit``, stop after that many members (the rest is not inflated).

    Raises:
        ApkFormatError: for bytes that are not gzip, a truncated member, or more than
            ``max_bytes`` once inflated.
    """
    members: list[GzipMember] = []
    offset = 0
    total = 0
    while offset < len(data) and (limit is None or len(members) < limit):
        inflater = zlib.decompressobj(31)
        try:
            raw = inflater.decompress(data[offset:], max_bytes + 1 - total)
        except zlib.error as error:
            raise ApkFormatError(
                subject, [f"gzip member {len(members) + 1} is not valid gzip: {error}"]
            ) from None
        total += len(raw)
        if total > max_bytes or inflater.unconsumed_tail:
            raise ApkFormatError(subject, [f"inflates to more than {max_bytes} bytes"])
        if not inflater.eof:
            raise ApkFormatError(
                subject, [f"gzip member {len(members) + 1} is truncated (file cut short?)"]
            )
        end = len(data) - len(inflater.unused_data)
        members.append(GzipMember(data[offset:end], raw))
        offset = end
    if not members:
        raise ApkFormatError(subject, ["the file is empty"])
    return members


@dataclass(frozen=True)
class TarEntry:
    """One tar entry after applying its PAX / GNU long-name headers, as apk sees it."""

    name: str
    type: bytes
    mode: int
    size: int
    linkname: str
    uid: int
    gid: int
    uname: str
    gname: str
    mtime: int
    pax: dict[str, str]
    data: bytes = field(repr=False)

    @property
    def is_regular(self) -> bool:
        """True for a regular file entry."""
        return self.type in REGULAR_TYPES


@dataclass(frozen=True)
class TarStream:
    """The entries of one tar stream, whether it ended with zero blocks, and its problems."""

    entries: tuple[TarEntry, ...]
    has_end_marker: bool
    problems: tuple[str, ...]


def _octal(value: bytes) -> int | None:
    # apk reads octal digits followed by NULs or spaces; anything else is an error.
    text = value.rstrip(b"\0 ").lstrip(b" ")
    if not text:
        return 0
    if any(c not in b"01234567" for c in text):
        return None
    return int(text, 8)


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes) -> dict[str, str] | None:
    records: dict[str, str] = {}
    rest = data
    while rest:
        length_text, _, _ = rest.partition(b" ")
        if not length_text.isdigit() or int(length_text) > len(rest) or int(length_text) < 5:
            return None
        record, rest = rest[: int(length_text)], rest[int(length_text) :]
        key, equals, value = record[len(length_text) + 1 : -1].partition(b"=")
        if not equals or not record.endswith(b"\n"):
            return None
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
    return records


_NUMERIC_FIELDS = (
    ("mode", 100, 108),
    ("uid", 108, 116),
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
    ("checksum", 148, 156),
)


def _header_numbers(header: bytes, offset: int) -> tuple[dict[str, int] | None, str]:
    """Return the numeric fields of a ustar header (None if unusable) and any problem."""
    parsed = {name: _octal(header[start:end]) for name, start, end in _NUMERIC_FIELDS}
    bad = [name for name, value in parsed.items() if value is None]
    if header[257:262] != b"ustar" or bad:
        return None, f"bad tar header at offset {offset} ({', '.join(bad) or 'no ustar magic'})"
    numbers = {name: value or 0 for name, value in parsed.items()}
    if numbers["checksum"] != sum(header[:148]) + 256 + sum(header[156:]):
        return numbers, f"tar header checksum mismatch at offset {offset}"
    return numbers, ""


def _blocks(
    raw: bytes, where: str, problems: list[str]
) -> Iterator[tuple[bytes, dict[str, int], bytes] | None]:
    """Yield (header, numeric fields, data) per tar header; a final None marks zero blocks."""
    offset = 0
    while offset + BLOCK <= len(raw):
        header = raw[offset : offset + BLOCK]
        if header == bytes(BLOCK):
            if raw[offset:].strip(b"\0"):
                problems.append(f"{where}: data after the end-of-archive blocks")
            yield None
            return
        numbers, problem = _header_numbers(header, offset)
        if problem:
            problems.append(f"{where}: {problem}")
        if numbers is None:
            return
        data = raw[offset + BLOCK : offset + BLOCK + numbers["size"]]
        if len(data) < numbers["size"]:
            problems.append(f"{where}: tar entry at offset {offset} is truncated")
            return
        offset += BLOCK + -(-numbers["size"] // BLOCK) * BLOCK
        yield header, numbers, data
    if offset < len(raw):
        problems.append(f"{where}: {len(raw) - offset} stray bytes after the last tar entry")


def read_tar(raw: bytes, where: str) -> TarStream:
    """Parse a tar stream the way apk-tools 2.14 does; problems are collected, not raised."""
    entries: list[TarEntry] = []
    problems: list[str] = []
    pax: dict[str, str] = {}
    long_name: str | None = None
    has_end = False
    for block in _blocks(raw, where, problems):
        if block is None:
            has_end = True
            break
        header, numbers, data = block
        typeflag = header[156:157]
        if typeflag == b"x":
            parsed = _parse_pax(data)
            if parsed is None:
                problems.append(f"{where}: malformed PAX header before entry {len(entries) + 1}")
            pax.update(parsed or {})
            continue
        if typeflag in (b"L", b"g", b"K"):
            # GNU long name applies to the next entry; apk ignores global PAX and GNU 'K'.
            long_name = _text(data) if typeflag == b"L" else long_name
            continue
        name = _text(header[0:100])
        prefix = _text(header[345:500])
        entries.append(
            TarEntry(
                name=pax.get("path", long_name or (f"{prefix}/{name}" if prefix else name)),
                type=typeflag,
                mode=numbers["mode"] & 0o7777,
                size=numbers["size"],
                linkname=pax.get("linkpath", _text(header[157:257])),
                uid=numbers["uid"],
                gid=numbers["gid"],
                uname=_text(header[265:297]),
                gname=_text(header[297:329]),
                mtime=numbers["mtime"],
                pax=pax,
                data=data,
            )
        )
        pax, long_name = {}, None
    return TarStream(tuple(entries), has_end, tuple(problems))


def tar_entry(info: tarfile.TarInfo, data: bytes = b"") -> bytes:
    """Return one tar entry (POSIX PAX headers when needed) with its data padded to 512.

    Writing entries one by one, without ``TarFile.close()``, gives the "cut" tars apk
    needs for the signature and control members (no end-of-archive blocks).
    """
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header + data + bytes(-len(data) % BLOCK)


def regular_info(name: str, size: int, *, mode: int = 0o644, mtime: int = 0) -> tarfile.TarInfo:
    """Return a TarInfo for a root-owned regular file, as abuild writes control entries."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.uname = info.gname = "root"
    return info
