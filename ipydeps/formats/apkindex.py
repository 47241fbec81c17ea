"""APKINDEX text: parse and render records exactly as apk-tools writes them."""

from __future__ import annotations

import functools
import io
import re
import tarfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from .apkversion import compare_apk_versions, is_valid_apk_version
from .errors import FormatError

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_INDEX_BYTES",
    "ApkIndexError",
    "ApkIndexRecord",
    "parse_apkindex",
    "read_apkindex_archive",
    "render_apkindex",
    "render_record",
]

# Decompressed size limit for an APKINDEX.tar.gz: Alpine's main/x86_64 is about 4 MiB.
MAX_INDEX_BYTES = 256 * 1024 * 1024
# apk builds the C..k block of a record in a 2048-byte buffer ("Metadata ... too long").
MAX_HEADER_BYTES = 2047
_CHECKSUM_RE = re.compile(r"Q1[A-Za-z0-9+/]{27}=|[0-9a-f]{32}")


class ApkIndexError(FormatError):
    """An APKINDEX (or APKINDEX.tar.gz) is malformed; ``problems`` lists every problem."""

    def __init__(self, problems: list[str], *, hint: str | None = None) -> None:
        self.problems = list(problems)
        super().__init__(
            "APKINDEX is malformed: " + "; ".join(self.problems),
            hint=hint or "rebuild the index on the repository server",
        )


@dataclass(frozen=True)
class ApkIndexRecord:
    """One package of an APKINDEX; field names follow .PKGINFO, letters in comments."""

    checksum: str  # C: "Q1" + base64(sha1(control member))
    name: str  # P
    version: str  # V (with -rN)
    arch: str = ""  # A (omitted when empty)
    size: int = 0  # S: size of the .apk file
    installed_size: int = 0  # I
    description: str = ""  # T
    url: str = ""  # U
    license: str = ""  # L
    origin: str = ""  # o
    maintainer: str = ""  # m
    build_time: int = 0  # t
    commit: str = ""  # c
    provider_priority: int = 0  # k
    depends: tuple[str, ...] = ()  # D (space separated)
    provides: tuple[str, ...] = ()  # p
    install_if: tuple[str, ...] = ()  # i

    @property
    def filename(self) -> str:
        """The package's file name in the repository: ``<P>-<V>.apk``."""
        return f"{self.name}-{self.version}.apk"


# Letter -> (field, kind) in apk's output order.
_FIELDS: dict[str, tuple[str, str]] = {
    "C": ("checksum", "str"),
    "P": ("name", "str"),
    "V": ("version", "str"),
    "A": ("arch", "str"),
    "S": ("size", "int"),
    "I": ("installed_size", "int"),
    "T": ("description", "str"),
    "U": ("url", "str"),
    "L": ("license", "str"),
    "o": ("origin", "str"),
    "m": ("maintainer", "str"),
    "t": ("build_time", "int"),
    "c": ("commit", "str"),
    "k": ("provider_priority", "int"),
    "D": ("depends", "list"),
    "p": ("provides", "list"),
    "i": ("install_if", "list"),
}
# apk always writes these, even when empty; the rest only when set.
_ALWAYS = frozenset("CPVSITUL")
_REQUIRED = ("C", "P", "V")


def _parse_line(line: str) -> tuple[str, object] | str | None:
    """Return (letter, value), a problem text, or None for a line apk ignores."""
    letter, colon, value = line[:1], line[1:2], line[2:]
    if colon != ":":
        return f"expected '<letter>:<value>', got {line[:40]!r}"
    if letter not in _FIELDS:
        # apk ignores unknown lowercase letters but refuses the package otherwise.
        return None if letter.islower() else f"unknown field {letter!r}"
    kind = _FIELDS[letter][1]
    if kind == "int":
        if not value.isascii() or not value.isdigit():
            return f"{letter}: must be a number, got {value!r}"
        return letter, int(value)
    if kind == "list":
        return letter, tuple(value.split())
    return letter, value


def _record_problems(values: dict[str, object], first: int) -> list[str]:
    problems = [
        f"record at line {first}: missing {letter}: ({_FIELDS[letter][0]})"
        for letter in _REQUIRED
        if letter not in values
    ]
    checksum = values.get("C")
    if isinstance(checksum, str) and not _CHECKSUM_RE.fullmatch(checksum):
        problems.append(f"record at line {first}: C:{checksum} is not a Q1 SHA-1 checksum")
    version = values.get("V")
    if isinstance(version, str) and not is_valid_apk_version(version):
        problems.append(f"record at line {first}: V:{version} is not a valid apk version")
    return problems


def _record_from_lines(lines: list[tuple[int, str]], problems: list[str]) -> ApkIndexRecord | None:
    values: dict[str, object] = {}
    start = len(problems)
    for number, line in lines:
        parsed = _parse_line(line)
        if isinstance(parsed, str):
            problems.append(f"line {number}: {parsed}")
        elif parsed is not None:
            letter, value = parsed
            if letter in values:
                problems.append(f"line {number}: field {letter!r} appears twice in one record")
            values[letter] = value
    problems += _record_problems(values, lines[0][0])
    if len(problems) > start:
        return None
    return ApkIndexRecord(**{_FIELDS[letter][0]: value for letter, value in values.items()})  # type: ignore[arg-type]


def parse_apkindex(text: str) -> list[ApkIndexRecord]:
    """Parse APKINDEX text into records, in file order.

    Raises:
        ApkIndexError: listing every problem: CR characters, a last record without its
            blank line (apk would silently drop it), malformed or duplicate lines, unknown
            uppercase fields, non-numeric numbers, and records missing C:, P: or V:.
    """
    problems: list[str] = []
    if "\r" in text:
        problems.append("contains CR characters; apk needs LF line endings only")
    if text and not text.endswith("\n\n"):
        problems.append("the last record does not end with a blank line (apk would drop it)")
    records: list[ApkIndexRecord] = []
    current: list[tuple[int, str]] = []
    for number, line in enumerate([*text.split("\n"), ""], start=1):
        if line.strip("\r"):
            current.append((number, line.rstrip("\r")))
        elif current:
            record = _record_from_lines(current, problems)
            if record is not None:
                records.append(record)
            current = []
    if problems:
        raise ApkIndexError(problems)
    return records


def _sort_key(record: ApkIndexRecord) -> tuple[str, str]:
    return (record.name.lower(), record.name)


def _compare_records(a: ApkIndexRecord, b: ApkIndexRecord) -> int:
    # apk sorts names like strcasecmp, then strcmp, then by version.
    key_a, key_b = _sort_key(a), _sort_key(b)
    if key_a != key_b:
        return -1 if key_a < key_b else 1
    return compare_apk_versions(a.version, b.version)


def render_record(record: ApkIndexRecord) -> str:
    """Render one record in apk's field order, ending with its blank line.

    Raises:
        ApkIndexError: if a value holds a line break, a list item holds a space, C/P/V is
            missing or the C..k block exceeds apk's 2048-byte buffer.
    """
    problems: list[str] = []
    header: list[str] = []
    tail: list[str] = []
    for letter, (name, kind) in _FIELDS.items():
        value = getattr(record, name)
        if kind == "list":
            if any(not item or any(c.isspace() for c in item) for item in value):
                problems.append(f"{record.name}: {name} item with whitespace: {value!r}")
            if value:
                tail.append(f"{letter}:{' '.join(value)}")
            continue
        text = str(value)
        if "\n" in text or "\r" in text:
            problems.append(f"{record.name}: {name} contains a line break")
        if letter in _REQUIRED and not text:
            problems.append(f"record {record.name}-{record.version} has no {letter}: ({name})")
        if letter in _ALWAYS or value:
            header.append(f"{letter}:{text}")
    block = "".join(line + "\n" for line in header)
    if len(block.encode()) > MAX_HEADER_BYTES:
        problems.append(
            f"{record.name}: metadata is {len(block.encode())} bytes; apk allows at most "
            f"{MAX_HEADER_BYTES} (shorten the description)"
        )
    if problems:
        raise ApkIndexError(problems)
    return block + "".join(line + "\n" for line in tail) + "\n"


def render_apkindex(records: Iterable[ApkIndexRecord]) -> str:
    """Render records as APKINDEX text, sorted like ``apk index`` (name, then version).

    Every record, the last included, ends with a blank line; LF line endings only.

    Raises:
        ApkIndexError: for any record :func:`render_record` refuses.
    """
    ordered = sorted(records, key=functools.cmp_to_key(_compare_records))
    return "".join(render_record(record) for record in ordered)


def _gunzip(data: bytes) -> bytes:
    """Inflate every concatenated gzip member, refusing more than MAX_INDEX_BYTES."""
    output = bytearray()
    rest = data
    while rest:
        inflater = zlib.decompressobj(31)
        output += inflater.decompress(rest, MAX_INDEX_BYTES + 1 - len(output))
        if len(output) > MAX_INDEX_BYTES or inflater.unconsumed_tail:
            raise ApkIndexError([f"decompresses to more than {MAX_INDEX_BYTES} bytes"])
        if not inflater.eof:
            raise ApkIndexError(["truncated gzip stream"])
        rest = inflater.unused_data
    return bytes(output)


def read_apkindex_archive(data: bytes) -> tuple[str | None, str]:
    """Return (DESCRIPTION, APKINDEX text) from APKINDEX.tar.gz bytes, without verifying.

    The signature is apk's job on the client; the repository server verifies with
    ``ipydeps_repo.apk.verify.verify_index``.

    Raises:
        ApkIndexError: if the bytes are not gzip'd tar or hold no APKINDEX entry.
    """
    try:
        raw = _gunzip(data)
    except zlib.error as error:
        raise ApkIndexError([f"not a gzip stream: {error}"]) from None
    description: str | None = None
    index: str | None = None
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as archive:
            for member in archive:
                if member.name not in ("DESCRIPTION", "APKINDEX") or not member.isfile():
                    continue
                stream = archive.extractfile(member)
                content = stream.read().decode() if stream is not None else ""
                if member.name == "APKINDEX":
                    index = content
                else:
                    description = content
    except (tarfile.TarError, UnicodeDecodeError) as error:
        raise ApkIndexError([f"not a valid tar archive: {error}"]) from None
    if index is None:
        raise ApkIndexError(["the archive has no APKINDEX entry"])
    return description, index
