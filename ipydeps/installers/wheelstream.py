"""Install a repository's stored copy of a wheel straight from the socket, as it arrives.

Our repository offers beside each wheel a stored copy: the same members, uncompressed
(see ``ipydeps.models.StoredCopy``). A zip file written by the usual tools gives each
member's sizes and CRC in the local header in front of its data, so the copy can be read
front to back: every member's bytes go from the download buffer to their file in staging
as they arrive, with no inflating and no copy of the archive on disk. That is what makes
it cheap: inflating the 208 MB NumPy, SciPy and pandas unpack to costs more CPU than
anything else an install does.

Nothing here is trusted before the end. Files go into this wheel's staging directories
only (wheel.py), every path is checked before anything is written, and a problem found in
the content (unsafe path, corrupt member) is held back until the fetcher has checked the
download's sha256, so tampering is reported as a hash mismatch, not as its symptom. When
the stream ends, the central directory must list exactly the members that were written, at
the offsets where they were and with the same sizes and CRCs: installers that read the
central directory (pip, uv, ``zipfile``) would install the same files.

An archive this reader does not take (a compressed member, sizes in a data descriptor,
zip64, a ``.data`` or lib layout it did not expect) raises ``StreamingUnsupported`` from
``finish``; the caller discards what was staged and installs the wheel itself instead.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from ..environment import InstallScheme
from ..errors import CancelledError
from ..formats.wheel import is_unsafe_path
from .journal import is_reserved_name
from .members import _INFLATE, MAX_IN_MEMORY, InvalidWheelError, RecordMismatchError, record_hash
from .wheel import (
    StagedWheel,
    _category_root,
    _installed_path,
    _Layout,
    _note_top_level,
    _place,
    _write_metadata,
    _write_scripts,
    record_hashes,
)

_LOCAL = struct.Struct("<2H3H3L2H")  # local file header after its signature (26 bytes)
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # central directory file header (46 bytes)
_END = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_LOCAL_SIG, _CENTRAL_SIG = b"PK\x03\x04", b"PK\x01\x02"
_END_SIG, _ZIP64_END_SIG = b"PK\x05\x06", b"PK\x06\x06"
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_UTF8 = 0x1, 0x8, 0x800
_STORED = 0
_ZIP64 = 0xFFFFFFFF
_KEPT_IN_DIST_INFO = ("WHEEL", "entry_points.txt")  # read at the end, and written too
_RECORD_FILES = ("RECORD", "RECORD.jws", "RECORD.p7s")  # RECORD is rewritten, never copied


class StreamingUnsupported(Exception):
    """Raised for an archive that cannot be installed in stream order: use the wheel."""


@dataclass
class _Member:
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
    # The sha256 of its bytes as they are written: the installed RECORD says what is on disk.
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)


class WheelStreamStager:
    """Consumes one stored copy's bytes in order and stages the wheel it holds.

    ``restart()`` (called by the fetcher before each attempt) returns the function that
    takes the bytes; once the fetcher has verified the sha256, ``finish()`` returns the
    ``StagedWheel``. ``discard()`` removes whatever was staged.
    """

    def __init__(self, filename: str, scheme: InstallScheme, staging_name: str, *,
                 cancel: threading.Event, size: int | None = None) -> None:
        try:
            name, version, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename as error:
            raise InvalidWheelError(f"{filename}: {error}") from None
        self.filename = filename
        self.scheme = scheme
        self.staging_name = staging_name
        self.cancel = cancel
        self._size = size  # what the index announced: more is refused at once
        self._project = name
        self._version = str(version)
        # Pure wheels say Root-Is-Purelib: true, the others false; checked against WHEEL.
        self._lib = "purelib" if all(tag.platform == "any" for tag in tags) else "platlib"
        self.staged = self._new_staged()
        self._reset()

    # -- the byte stream --------------------------------------------------------------------

    def restart(self) -> Callable[[bytes], None]:
        """Forget a previous attempt (its staged files too) and return the byte sink."""
        self.discard()
        self.staged = self._new_staged()
        self._reset()
        return self._feed

    def _new_staged(self) -> StagedWheel:
        targets = self.scheme.roots()
        targets["headers"] = self.scheme.headers / self._project
        return StagedWheel(name=self._project, version=self._version, dist_info="",
                           lib_category=self._lib, staging={}, targets=targets,
                           stage_key=f"{self._project}-{self._version}")

    def _reset(self) -> None:
        self._position = 0  # stream offset of the next byte
        self._need = 4
        self._pending = bytearray()
        self._on_full: Callable[[bytes], None] = self._on_signature
        self._current: _Member | None = None
        self._members: list[_Member] = []
        self._kept: dict[str, bytes] = {}
        self._tail = bytearray()
        self._tail_offset: int | None = None
        self._problem: BaseException | None = None
        self._data_dir: str | None = None
        self._made: set[str] = set()
        self._lib_root: str | None = None
        self._top_level: set[str] = set()
        self._pth: list[str] = []

    def _feed(self, chunk: bytes) -> None:
        if self._problem is not None:
            return  # keep reading (the fetcher hashes everything), stop writing
        if self.cancel.is_set():
            raise CancelledError()
        if self._size is not None and self._position + len(chunk) > self._size:
            # Not held back like other problems: what arrives past the end piles up in memory.
            raise InvalidWheelError(
                f"Refused {self.filename}: the server sent more than the {self._size} bytes "
                "its index announced", hint="the repository is misconfigured or tampered with")
        try:
            self._consume(memoryview(chunk))
        except Exception as problem:  # noqa: BLE001 - raised by finish(), after the hash check
            self._problem = problem
            self._close_current()

    def _consume(self, view: memoryview) -> None:
        while view:
            if self._tail_offset is not None:
                self._tail += view
                self._position += len(view)
                return
            member = self._current
            if member is not None:
                take = min(len(view), member.size - member.written)
                self._take(member, view[:take])
                self._position += take
                view = view[take:]
                if member.written == member.size:
                    self._member_done(member)
                continue
            take = min(len(view), self._need - len(self._pending))
            self._pending += view[:take]
            self._position += take
            view = view[take:]
            if len(self._pending) == self._need:
                block, self._pending = bytes(self._pending), bytearray()
                self._on_full(block)

    def _expect(self, count: int, then: Callable[[bytes], None]) -> None:
        self._need, self._on_full = count, then

    def _on_signature(self, signature: bytes) -> None:
        if signature == _LOCAL_SIG:
            self._expect(_LOCAL.size, self._on_local_header)
        elif signature in (_CENTRAL_SIG, _END_SIG, _ZIP64_END_SIG):
            self._tail_offset = self._position - 4
            self._tail += signature
        else:
            raise StreamingUnsupported(f"unexpected bytes at offset {self._position - 4}")

    def _on_local_header(self, header: bytes) -> None:
        (_, flags, method, _, _, crc, compressed, size, name_length,
         extra_length) = _LOCAL.unpack(header)
        if method != _STORED or compressed != size:
            raise StreamingUnsupported("a member is compressed: not a stored copy")
        if flags & (_FLAG_ENCRYPTED | _FLAG_DESCRIPTOR) or size == _ZIP64:
            raise StreamingUnsupported("a member's sizes are not in its local header")
        if not name_length:
            raise InvalidWheelError(f"{self.filename}: a member has no name")
        offset = self._position - 4 - _LOCAL.size

        def on_name(block: bytes) -> None:
            name = block[:name_length].decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
            self._start_member(name, offset, crc, size)

        self._expect(name_length + extra_length, on_name)

    # -- members ----------------------------------------------------------------------------

    def _start_member(self, name: str, offset: int, crc: int, size: int) -> None:
        member = _Member(name, offset, crc, size, None, False)
        self._members.append(member)
        self._plan(member)
        if member.destination is not None:
            member.handle = os.open(member.destination,
                                    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._expect(4, self._on_signature)
        self._current = member
        if not size:
            self._member_done(member)

    def _plan(self, member: _Member) -> None:
        """Decide where ``member`` goes (or that it is only kept); refuse unsafe paths."""
        self._plan_place(member)
        if member.keep and member.size > MAX_IN_MEMORY:
            raise self._refused(f"{member.name!r} declares {member.size} bytes, more than the "
                                f"{MAX_IN_MEMORY} a metadata file or script may hold")

    def _plan_place(self, member: _Member) -> None:
        name = member.name
        if name.endswith("/"):
            return  # a directory entry: directories are made for the files inside them
        top, _, rest = name.partition("/")
        if top.endswith(".dist-info") and "/" not in rest:
            if rest in _RECORD_FILES:
                member.keep = rest == "RECORD"
                return
            member.keep = rest in _KEPT_IN_DIST_INFO
        if top.endswith(".data") and self._data_dir is None:
            self._data_dir = top
        if top == self._data_dir:
            destination = self._data_destination(member, top)
        else:
            destination = self._lib_destination(name, top)
            member.installed = name  # RECORD paths are relative to the lib directory
        if destination is None:
            return
        parent = destination.rpartition("/")[0]
        if parent not in self._made:
            os.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        member.destination = destination

    def _lib_destination(self, name: str, top: str) -> str:
        # Most members go here: plain string work, since it runs under the GIL for each
        # of thousands of members while the other downloads wait for it.
        if is_unsafe_path(name):
            raise self._refused(f"unsafe path {name!r}")
        if is_reserved_name(name):
            raise self._refused(f"{name!r} is named like ipydeps' own install journals")
        if self._lib_root is None:
            self._lib_root = str(_category_root(self.staged, self._lib, self.staging_name))
        self.staged.ships_bytecode = self.staged.ships_bytecode or name.endswith(".pyc")
        _note_top_level(top, "/" not in name, self._top_level, self._pth)
        return f"{self._lib_root}/{name}"

    def _data_destination(self, member: _Member, data_dir: str) -> str | None:
        placed = _place(member.name, data_dir, self._lib)
        if isinstance(placed, str):
            raise self._refused(placed)
        category, relative = placed
        if category == "scripts":
            member.keep = True  # shebangs are rewritten once the whole script is here
            member.script = relative
            return None
        if category in ("purelib", "platlib"):
            _note_top_level(relative.parts[0], len(relative.parts) == 1, self._top_level,
                            self._pth)
        member.installed = _installed_path(self.staged, category, relative)
        return str(_category_root(self.staged, category, self.staging_name) / relative)

    def _refused(self, reason: str) -> InvalidWheelError:
        return InvalidWheelError(f"Refused {self.filename}: {reason}",
                                 hint="the wheel is malformed or hostile; tell its publisher")

    def _take(self, member: _Member, data: memoryview) -> None:
        member.running_crc = _INFLATE.crc32(data, member.running_crc)
        member.digest.update(data)
        member.written += len(data)
        if member.keep:
            member.parts.append(bytes(data))
        if member.handle >= 0:
            while data:
                data = data[os.write(member.handle, data):]

    def _member_done(self, member: _Member) -> None:
        self._current = None
        self._close_current(member)
        if member.running_crc != member.crc:
            raise InvalidWheelError(f"{self.filename}: {member.name!r} is corrupt "
                                    "(CRC mismatch)")
        if member.keep:
            self._kept[member.name] = b"".join(member.parts)
            member.parts = []

    def _close_current(self, member: _Member | None = None) -> None:
        member = member or self._current
        if member is not None and member.handle >= 0:
            os.close(member.handle)
            member.handle = -1

    # -- the end ----------------------------------------------------------------------------

    def finish(self) -> StagedWheel:
        """Return the staged wheel, once everything is written and checks out.

        Call only after the download's sha256 matched. Raises ``InvalidWheelError``
        for an archive that breaks the wheel spec, ``StreamingUnsupported`` for one to
        install from the wheel itself, and ``OSError`` when a file could not be written.
        """
        if self._problem is not None:
            raise self._problem
        if self._current is not None or self._tail_offset is None:
            raise InvalidWheelError(f"{self.filename}: the archive ends in the middle")
        executable = self._check_central_directory()
        self._check_metadata()
        for member in self._members:
            if member.destination is not None and member.name in executable:
                os.chmod(member.destination, 0o755)
        layout = _Layout()
        record = self._kept.get(f"{self.staged.dist_info}/RECORD")
        if record is None:
            raise self._refused(f"it has no {self.staged.dist_info}/RECORD")
        self._check_record(record_hashes(record.decode("utf-8", "replace")))
        scripts: list[tuple[bytes, Path]] = []
        for member in self._members:
            if member.script is not None:
                root = _category_root(self.staged, "scripts", self.staging_name)
                scripts.append((self._kept[member.name], root / member.script))
            elif member.destination is not None:
                layout.record.append((member.installed, record_hash(member.digest),
                                      str(member.size)))
        entry_points = self._kept.get(f"{self.staged.dist_info}/entry_points.txt")
        _write_scripts(scripts, entry_points.decode() if entry_points is not None else None,
                       layout, self.staged, self.scheme, self.staging_name)
        _write_metadata(layout, self.staged, self.staging_name)
        self.staged.files = len(layout.record)
        self.staged.bytes_written = sum(member.size for member in self._members
                                        if member.destination is not None)
        self.staged.top_level = tuple(sorted(name for name in self._top_level
                                             if name.isidentifier()))
        self.staged.pth_files = tuple(self._pth)
        return self.staged

    def discard(self) -> None:
        """Remove everything staged for this wheel (after a failure, or before a fallback)."""
        self._close_current()
        for stage_dir in list(self.staged.anchors):
            shutil.rmtree(stage_dir, ignore_errors=True)

    def _check_central_directory(self) -> set[str]:
        """Return the members marked executable, once the central directory is checked.

        It must describe exactly the members written, at the offsets where they were.
        """
        entries, executable = _central_directory(bytes(self._tail), self._tail_offset or 0,
                                                 self.filename)
        seen = [(m.name, m.offset, m.crc, m.size, m.size) for m in self._members]
        if sorted(entries) != sorted(seen) or len({m.name for m in self._members}) != len(seen):
            raise InvalidWheelError(
                f"Refused {self.filename}: its central directory does not match its members",
                hint="the wheel is malformed or hostile; tell its publisher")
        return executable

    def _check_record(self, hashes: dict[str, tuple[str, str]]) -> None:
        """Refuse a member whose bytes do not have the hash and size its RECORD gives.

        A member RECORD leaves out is installed, as pip does (the installed RECORD gets
        the hash of what was written); a hash weaker than sha256 is refused.
        """
        for member in self._members:
            expected, recorded_size = hashes.get(member.name, ("", ""))
            if not expected or (member.destination is None and member.script is None):
                continue
            algorithm = expected.partition("=")[0]
            if algorithm == "sha256":
                actual = record_hash(member.digest)
            elif algorithm in ("sha384", "sha512"):
                actual = record_hash(self._rehash(member, algorithm))
            else:
                raise self._refused(f"{member.name!r} has a RECORD hash that is not sha256 "
                                    "or better")
            if actual != expected:
                raise RecordMismatchError(self.filename, member.name, expected, actual)
            if recorded_size and recorded_size != str(member.size):
                raise self._refused(f"{member.name!r} is {member.size} bytes, its RECORD says "
                                    f"{recorded_size}")

    def _rehash(self, member: _Member, algorithm: str) -> hashlib._Hash:
        """Hash a member again with another algorithm (rare: RECORDs use sha256)."""
        digest = hashlib.new(algorithm)
        if member.destination is None:
            digest.update(self._kept.get(member.name, b""))
            return digest
        with open(member.destination, "rb") as handle:
            while piece := handle.read(1 << 20):
                digest.update(piece)
        return digest

    def _check_metadata(self) -> None:
        dist_infos = {m.name.split("/", 1)[0] for m in self._members
                      if m.name.split("/", 1)[0].endswith(".dist-info") and "/" in m.name}
        if len(dist_infos) != 1:
            raise InvalidWheelError(f"{self.filename}: expected one .dist-info directory, "
                                    f"found {sorted(dist_infos) or 'none'}")
        dist_info = dist_infos.pop()
        stem = dist_info.removesuffix(".dist-info")
        project, _, version = stem.partition("-")
        if canonicalize_name(project) != self._project or not version:
            raise InvalidWheelError(f"{self.filename}: its metadata directory {dist_info!r} "
                                    "names another project")
        self.staged.dist_info = dist_info
        if self._data_dir is not None and self._data_dir != stem + ".data":
            raise StreamingUnsupported("a .data directory that is not the wheel's own")
        wheel_text = self._kept.get(f"{dist_info}/WHEEL")
        if wheel_text is None:
            raise InvalidWheelError(f"{self.filename}: no {dist_info}/WHEEL")
        meta = BytesHeaderParser().parsebytes(wheel_text)
        if not str(meta.get("Wheel-Version", "")).startswith("1."):
            raise InvalidWheelError(f"{self.filename}: unsupported Wheel-Version "
                                    f"{meta.get('Wheel-Version')!r}")
        lib = "purelib" if str(meta.get("Root-Is-Purelib", "")).lower() == "true" else "platlib"
        if lib != self._lib and self.scheme.purelib != self.scheme.platlib:
            raise StreamingUnsupported("Root-Is-Purelib differs from the wheel's tags")


def _central_directory(tail: bytes, offset: int, wheel_name: str
                       ) -> tuple[list[tuple[str, int, int, int, int]], set[str]]:
    """Parse the central directory found at stream ``offset``.

    Returns its entries as (name, local header offset, crc, compressed size, size) and
    the names of the entries with an executable bit in their Unix mode.
    """
    entries: list[tuple[str, int, int, int, int]] = []
    executable: set[str] = set()
    position = 0
    while tail[position:position + 4] == _CENTRAL_SIG and position + _CENTRAL.size <= len(tail):
        (_, _, _, _, _, flags, _, _, _, crc, compressed, size, name_length, extra_length,
         comment_length, _, _, attributes, header_offset) = _CENTRAL.unpack_from(tail, position)
        if _ZIP64 in (compressed, size, header_offset):
            raise StreamingUnsupported("zip64 central directory")
        start = position + _CENTRAL.size
        name = tail[start:start + name_length].decode("utf-8" if flags & _FLAG_UTF8 else "cp437")
        entries.append((name, header_offset, crc, compressed, size))
        if (attributes >> 16) & 0o111:
            executable.add(name)
        position = start + name_length + extra_length + comment_length
    if tail[position:position + 4] == _ZIP64_END_SIG:
        raise StreamingUnsupported("zip64 end of central directory")
    end = tail[position:position + _END.size]
    if len(end) != _END.size or end[:4] != _END_SIG:
        raise InvalidWheelError(f"{wheel_name}: damaged central directory")
    _, disk, _, _, count, _, directory_offset, _ = _END.unpack(end)
    if disk != 0 or count != len(entries) or directory_offset != offset:
        raise InvalidWheelError(f"{wheel_name}: damaged central directory")
    return entries, executable
