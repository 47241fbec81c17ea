"""A wheel's RECORD (binary distribution format, "The .dist-info directory"): read, write, check.

One policy for every path that reads a wheel: the server's upload check, the optimizer,
the apk wrapper and both client installers.

- RECORD is UTF-8 CSV, three fields a row: path, ``<algorithm>=<urlsafe base64, unpadded>``
  and size. A hash must be sha256 or better (``RECORD_ALGORITHMS``; the spec forbids md5
  and sha1), a size a decimal number, a path listed once. RECORD itself and its signatures
  (``RECORD.jws``, ``RECORD.p7s``) have no hash.
- A member RECORD lists with a hash must have exactly those bytes, hashed with the
  algorithm RECORD names, and the size RECORD gives.
- Unlisted files: a member RECORD leaves out (or lists without a hash), and a row naming
  a member the wheel lacks. What publishes a wheel (upload check, optimizer, apk wrapper)
  refuses both (``unlisted_problems``), so whatever our repository serves says exactly
  what it holds. The client installing a wheel installs such a member, as pip and
  pypa/installer do, because it also installs upstream's wheels, which never passed our
  gate; the RECORD it writes gives every installed file the hash of the bytes written.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = [
    "RECORD_ALGORITHMS",
    "UNHASHED_NAMES",
    "RecordFile",
    "RecordRow",
    "parse_record",
    "record_hash",
    "record_hash_of",
    "record_paths",
    "render_record",
    "unlisted_problems",
]

RECORD_ALGORITHMS = ("sha256", "sha384", "sha512")
# Files of the .dist-info folder RECORD lists without a hash: RECORD cannot hash itself,
# and the signatures sign RECORD.
UNHASHED_NAMES = ("RECORD", "RECORD.jws", "RECORD.p7s")


class RecordRow(NamedTuple):
    """One row of RECORD: a path, its hash in RECORD's form ("" for none) and size ("")."""

    path: str
    hash: str
    size: str

    @property
    def algorithm(self) -> str:
        """The hash algorithm the row names ("" without a hash)."""
        return self.hash.partition("=")[0]


class RecordFile(NamedTuple):
    """RECORD as read: its rows by path, and every problem found in its text."""

    rows: Mapping[str, RecordRow]
    problems: tuple[str, ...]

    def hash_of(self, path: str) -> str:
        """Return the hash RECORD gives ``path`` ("" when it gives none: unlisted)."""
        row = self.rows.get(path)
        return row.hash if row is not None else ""

    def size_problem(self, path: str, size: int) -> str | None:
        """Say how a member's size disagrees with the size RECORD gives it; None if it does not."""
        row = self.rows.get(path)
        if row is None or not row.hash or not row.size or row.size == str(size):
            return None
        return f"{path!r} is {size} bytes, RECORD says {row.size}"

    def member_problem(self, path: str, actual: str, size: int) -> str | None:
        """Say why a member's bytes are not what RECORD says; None when they are.

        ``actual`` is the member's hash in RECORD's form, made with the algorithm its
        row names; an unlisted member has nothing to disagree with.
        """
        expected = self.hash_of(path)
        if expected and actual != expected:
            return f"{path!r} does not match its RECORD hash"
        return self.size_problem(path, size)


def record_hash(digest: _Hash) -> str:
    """Return ``digest`` as RECORD writes it: ``<algorithm>=<urlsafe base64, unpadded>``."""
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=")
    return f"{digest.name}={encoded.decode('ascii')}"


def record_hash_of(data: bytes, algorithm: str = "sha256") -> str:
    """Return the RECORD hash of ``data``, made with ``algorithm``."""
    return record_hash(hashlib.new(algorithm, data))


def parse_record(data: bytes, dist_info: str) -> RecordFile:
    """Read the RECORD of the wheel whose metadata folder is ``dist_info``.

    Every problem is listed: text that is not UTF-8 CSV, a row without three fields, a
    path listed twice, a hash that is not ``<algorithm>=<value>`` or not sha256 or better,
    a size that is not a number, a hash given to RECORD or a signature.
    """
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as error:
        return RecordFile({}, (f"{dist_info}/RECORD cannot be read: {error}",))
    found: dict[str, RecordRow] = {}
    problems: list[str] = []
    unhashed = {f"{dist_info}/{name}" for name in UNHASHED_NAMES}
    for fields in rows:
        if not fields:
            continue
        if len(fields) != 3:
            problems.append(f"RECORD row {fields!r} does not have 3 fields")
            continue
        row = RecordRow(*fields)
        problem = _row_problem(row, unhashed)
        if problem is None and row.path in found:
            problem = f"RECORD lists {row.path!r} twice"
        if problem is not None:
            problems.append(problem)
        else:
            found[row.path] = row
    return RecordFile(found, tuple(problems))


def _row_problem(row: RecordRow, unhashed: set[str]) -> str | None:
    if row.size and not row.size.isdecimal():
        return f"RECORD gives {row.path!r} the size {row.size!r}, not a number"
    if not row.hash:
        return None
    if row.path in unhashed:
        return f"RECORD gives {row.path!r} a hash; it cannot have one"
    algorithm, separator, value = row.hash.partition("=")
    if not separator or not value:
        return f"RECORD gives {row.path!r} the hash {row.hash!r}, not <algorithm>=<value>"
    if algorithm not in RECORD_ALGORITHMS:
        return f"RECORD uses {algorithm!r} for {row.path!r}; expected sha256 or better"
    return None


def unlisted_problems(
    record: RecordFile, members: Iterable[str], dist_info: str, *, broken: Iterable[str] = ()
) -> list[str]:
    """List the members RECORD leaves out or gives no hash, and its rows naming no member.

    Only what publishes a wheel refuses these (see the policy above). ``members`` are the
    archive's file names, directory entries left out; ``broken`` those already refused for
    their bytes, which are not said to be missing from RECORD as well.
    """
    names = set(members)
    unhashed = {f"{dist_info}/{name}" for name in UNHASHED_NAMES}
    problems = [
        f"RECORD lists {path!r}, which the wheel lacks" for path in record.rows if path not in names
    ]
    for name in sorted(names - unhashed - set(broken)):
        row = record.rows.get(name)
        if row is None:
            problems.append(f"{name!r} is not listed in RECORD")
        elif not row.hash:
            problems.append(f"RECORD has no hash for {name!r}")
    return problems


def record_paths(data: bytes) -> list[str]:
    """Return every path an installed distribution's RECORD names, whatever its other fields.

    For taking an installed distribution away: any installer may have written that RECORD,
    so a row this module's parser would refuse still names a file the distribution owns.
    """
    text = data.decode("utf-8", "replace")
    try:
        return [row[0] for row in csv.reader(io.StringIO(text)) if row and row[0]]
    except csv.Error:
        return [line.split(",", 1)[0] for line in text.splitlines() if line]


def render_record(rows: Iterable[tuple[str, str, str]], record_path: str) -> bytes:
    """Return RECORD's bytes: ``rows`` (path, hash, size) in order, then RECORD's own row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    writer.writerow((record_path, "", ""))
    return buffer.getvalue().encode("utf-8")
