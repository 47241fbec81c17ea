"""Unpack a verified wheel into a staging directory beside its final place, in parallel threads.

Follows the binary distribution format spec (PEP 427 / PEP 491): ``.data`` categories,
``#!python`` shebang rewriting, console-script entry points, RECORD rewritten with
installed paths and ``INSTALLER = ipydeps``. Staging lives inside each target
directory so that committing is a handful of ``rename`` calls (see transaction.py).
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import os
import re
import struct
import threading
import zipfile
import zlib
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path, PurePosixPath
from types import ModuleType

from packaging.utils import NormalizedName, canonicalize_name

from ..environment import InstallScheme
from ..errors import CancelledError, InstallError
from .journal import is_reserved_name

INSTALLER_NAME = "ipydeps"


def _inflater() -> ModuleType:
    """Return ISA-L's zlib (optional extra ``ipydeps[fast]``) if installed, else zlib.

    ISA-L inflates about twice as fast as zlib (measured on numpy/scipy/pandas wheels:
    0.37 s against 0.75 s of CPU), with the same API and wbits semantics, and also
    releases the GIL, so the unpack threads still run in parallel.
    """
    try:
        from isal import isal_zlib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return zlib
    return isal_zlib


_INFLATE = _inflater()
_CATEGORIES = ("purelib", "platlib", "scripts", "data", "headers")
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_BATCH_BYTES = 4 << 20  # small files are grouped into tasks of about this many compressed bytes
# Members are inflated this many bytes at a time: a zip bomb costs no more memory than this
# per unpack thread, whatever sizes it declares.
_PIECE = 4 << 20
# Members read whole into memory (WHEEL, RECORD, entry points, scripts) may be this big.
MAX_IN_MEMORY = 64 << 20
# Hashes a RECORD may use (the wheel spec asks for sha256 or better).
_RECORD_ALGORITHMS = ("sha256", "sha384", "sha512")
_ENTRY_POINT = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attrs>[\w.]+))?\s*(\[.*\])?\s*")


class InvalidWheelError(InstallError):
    """The wheel file breaks the wheel spec (unsafe path, missing metadata, bad entry)."""


class RecordMismatchError(InvalidWheelError):
    """A member's bytes do not have the hash (or size) the wheel's RECORD gives: refused."""

    def __init__(self, wheel: str, member: str, expected: str, actual: str) -> None:
        self.wheel = wheel
        self.member = member
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"Refused {wheel}: {member!r} has {actual}, its RECORD says {expected}. The "
            "wheel was altered after it was built; nothing was installed.",
            hint="the wheel is malformed or hostile; tell its publisher")


@dataclass
class StagedWheel:
    """A wheel unpacked into staging directories, ready to be renamed into place."""

    name: NormalizedName
    version: str
    dist_info: str  # e.g. "numpy-2.3.5.dist-info"
    lib_category: str  # "purelib" or "platlib": where the .dist-info goes
    staging: dict[str, Path]  # category -> this wheel's staging dir for it
    targets: dict[str, Path]  # category -> final directory
    # Staging dir -> the existing directory it is committed into. A target that does not
    # exist yet (e.g. include/site/python3.X/<name>) is staged below its nearest existing
    # ancestor, so a rollback leaves no new empty directories behind.
    anchors: dict[Path, Path] = field(default_factory=dict)
    files: int = 0
    bytes_written: int = 0
    top_level: tuple[str, ...] = ()  # importable top-level names, for restart warnings
    pth_files: tuple[str, ...] = ()
    ships_bytecode: bool = False
    # Name of this wheel's directory inside the staging dirs (default: the .dist-info stem).
    stage_key: str = ""


@dataclass
class _Entry:
    info: zipfile.ZipInfo
    destination: Path
    executable: bool
    installed: str = ""  # its path in the installed RECORD
    expected: str = ""  # its RECORD hash, "<algorithm>=<urlsafe base64>"
    written: str = ""  # the sha256 of what was written, in RECORD's form (set on extraction)


@dataclass
class _Layout:
    entries: list[_Entry] = field(default_factory=list)
    record: list[tuple[str, str, str]] = field(default_factory=list)  # installed path, hash, size
    scripts: list[tuple[zipfile.ZipInfo, Path, str]] = field(default_factory=list)


def stage_wheel(
    wheel: Path,
    scheme: InstallScheme,
    staging_name: str,
    *,
    executor: Executor,
    cancel: threading.Event,
) -> StagedWheel:
    """Unpack ``wheel`` (already hash-verified) into ``<target>/<staging_name>/`` dirs.

    Entries are decompressed and written by ``executor``'s threads (zlib and file
    writes release the GIL). Raises ``InvalidWheelError`` for a wheel that breaks
    the spec; nothing outside the staging directories is touched.
    """
    with zipfile.ZipFile(wheel) as archive:
        infos = archive.infolist()
        dist_info, name, version = _find_dist_info(wheel, infos)
        wheel_meta = BytesHeaderParser().parsebytes(
            read_member(archive, f"{dist_info}/WHEEL", wheel.name))
        if not str(wheel_meta.get("Wheel-Version", "")).startswith("1."):
            raise InvalidWheelError(f"{wheel.name}: unsupported Wheel-Version "
                                    f"{wheel_meta.get('Wheel-Version')!r}")
        lib = "purelib" if str(wheel_meta.get("Root-Is-Purelib", "")).lower() == "true" \
            else "platlib"
        targets = scheme.roots()
        targets["headers"] = scheme.headers / name
        staged = StagedWheel(name=name, version=version, dist_info=dist_info, lib_category=lib,
                             staging={}, targets=targets)
        layout = _plan_layout(wheel, archive, infos, staged, staging_name)
        _make_directories(entry.destination.parent for entry in layout.entries)
        _extract_all(wheel, layout.entries, executor, cancel)
        layout.record += [(entry.installed, entry.written, str(entry.info.file_size))
                          for entry in layout.entries]
        shipped = []
        for info, destination, expected in layout.scripts:
            data = read_member(archive, info.filename, wheel.name)
            check_record_hash(wheel.name, info.filename, expected, data)
            shipped.append((data, destination))
        entry_points = f"{dist_info}/entry_points.txt"
        _write_scripts(
            shipped,
            read_member(archive, entry_points, wheel.name).decode()
            if entry_points in archive.namelist() else None,
            layout, staged, scheme, staging_name)
        _write_metadata(layout, staged, staging_name)
    staged.files = len(layout.record)
    staged.bytes_written = sum(entry.info.file_size for entry in layout.entries)
    return staged


def read_member(archive: zipfile.ZipFile, name: str, wheel_name: str) -> bytes:
    """Return a member read whole into memory; refuse one declared over ``MAX_IN_MEMORY``.

    ``zipfile`` stops at the declared size and checks the CRC, so what it returns is no
    bigger than declared. Raises ``KeyError`` for a missing member, like ``read``.
    """
    info = archive.getinfo(name)
    if info.file_size > MAX_IN_MEMORY:
        raise InvalidWheelError(f"Refused {wheel_name}: {name!r} declares {info.file_size} "
                                f"bytes, more than the {MAX_IN_MEMORY} a metadata file or "
                                "script may hold",
                                hint="the wheel is malformed or hostile; tell its publisher")
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, zlib.error, EOFError):
        raise InvalidWheelError(f"{wheel_name}: {name!r} is corrupt") from None


def check_record_hash(wheel_name: str, member: str, expected: str, data: bytes) -> None:
    """Raise ``RecordMismatchError`` unless ``data`` has the RECORD hash ``expected`` (or "")."""
    if not expected:
        return
    algorithm = expected.partition("=")[0]
    actual = record_hash(hashlib.new(algorithm, data))
    if actual != expected:
        raise RecordMismatchError(wheel_name, member, expected, actual)


def record_hash(digest: hashlib._Hash) -> str:
    """Return ``digest`` as RECORD writes it: ``<algorithm>=<urlsafe base64, unpadded>``."""
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=")
    return f"{digest.name}={encoded.decode()}"


def _find_dist_info(wheel: Path, infos: list[zipfile.ZipInfo]) -> tuple[str, NormalizedName, str]:
    dist_infos = {info.filename.split("/", 1)[0] for info in infos
                  if info.filename.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise InvalidWheelError(f"{wheel.name}: expected one .dist-info directory, "
                                f"found {sorted(dist_infos) or 'none'}")
    dist_info = dist_infos.pop()
    project, _, version = dist_info[: -len(".dist-info")].partition("-")
    expected = canonicalize_name(wheel.name.split("-", 1)[0])
    if canonicalize_name(project) != expected or not version:
        raise InvalidWheelError(f"{wheel.name}: its metadata directory {dist_info!r} names "
                                "another project")
    return dist_info, expected, version


def _category_root(staged: StagedWheel, category: str, staging_name: str) -> Path:
    root = staged.staging.get(category)
    if root is None:
        target = staged.targets[category]
        anchor = target
        while not anchor.is_dir() and anchor.parent != anchor:
            anchor = anchor.parent
        key = staged.stage_key or staged.dist_info.removesuffix(".dist-info")
        stage_dir = anchor / staging_name / key
        staged.anchors[stage_dir] = anchor
        root = stage_dir / target.relative_to(anchor)
        staged.staging[category] = root
        root.mkdir(parents=True, exist_ok=True)
    return root


def _plan_layout(wheel: Path, archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo],
                 staged: StagedWheel, staging_name: str) -> _Layout:
    layout = _Layout()
    try:
        record_text = read_member(archive, f"{staged.dist_info}/RECORD", wheel.name)
    except KeyError:
        raise InvalidWheelError(f"Refused {wheel.name}: it has no {staged.dist_info}/RECORD",
                                hint="the wheel is malformed; tell its publisher") from None
    hashes = record_hashes(record_text.decode("utf-8", "replace"))
    seen: set[str] = set()
    data_dir = staged.dist_info.removesuffix(".dist-info") + ".data"
    problems: list[str] = []
    top_level: set[str] = set()
    pth: list[str] = []
    skip = {f"{staged.dist_info}/RECORD", f"{staged.dist_info}/RECORD.jws",
            f"{staged.dist_info}/RECORD.p7s"}
    for info in infos:
        name = info.filename
        if name in seen:
            problems.append(f"{name!r} is in the archive twice")
            continue
        seen.add(name)
        if info.is_dir() or name in skip:
            continue
        placed = _place(name, data_dir, staged.lib_category)
        if isinstance(placed, str):
            problems.append(placed)
            continue
        category, relative = placed
        staged.ships_bytecode = staged.ships_bytecode or name.endswith(".pyc")
        if category in ("purelib", "platlib"):
            _note_top_level(relative.parts[0], len(relative.parts) == 1, top_level, pth)
        expected = _expected_hash(name, info.file_size, hashes, problems)
        destination = _category_root(staged, category, staging_name) / relative
        if category == "scripts":
            layout.scripts.append((info, destination, expected))
            continue
        layout.entries.append(_Entry(info, destination, bool((info.external_attr >> 16) & 0o111),
                                     installed=_installed_path(staged, category, relative),
                                     expected=expected))
    if problems:
        raise InvalidWheelError(f"Refused {wheel.name}: " + "; ".join(problems),
                                hint="the wheel is malformed or hostile; tell its publisher")
    staged.top_level = tuple(sorted(name for name in top_level if name.isidentifier()))
    staged.pth_files = tuple(pth)
    return layout


def _expected_hash(name: str, size: int, hashes: dict[str, tuple[str, str]],
                   problems: list[str]) -> str:
    """Return the RECORD hash of member ``name`` ("" if RECORD has none); note problems.

    A member RECORD leaves out is installed, as pip does, and the installed RECORD gets
    the hash of what was written. A hash weaker than sha256 is a problem, and so is a
    RECORD size that differs from the archive's: one of them lies.
    """
    expected, recorded_size = hashes.get(name, ("", ""))
    if not expected:
        return ""
    if expected.partition("=")[0] not in _RECORD_ALGORITHMS:
        problems.append(f"{name!r} has a RECORD hash that is not sha256 or better")
    elif recorded_size and recorded_size != str(size):
        problems.append(f"{name!r} is {size} bytes, its RECORD says {recorded_size}")
    return expected


def _place(name: str, data_dir: str, lib_category: str) -> tuple[str, PurePosixPath] | str:
    """Return (category, path inside it) for an archive member, or why it is refused."""
    if is_unsafe_path(name):
        return f"unsafe path {name!r}"
    if is_reserved_name(name):
        return f"{name!r} is named like ipydeps' own install journals"
    path = PurePosixPath(name)
    if path.parts[0] != data_dir:
        return lib_category, path
    if len(path.parts) < 3 or path.parts[1] not in _CATEGORIES:
        return f"unknown .data entry {name!r}"
    return path.parts[1], PurePosixPath(*path.parts[2:])


def is_unsafe_path(name: str) -> bool:
    """Tell whether an archive member's name could land outside its directory.

    Absolute, with a backslash, with a ``..`` component, or with a drive-like first
    component (``C:``); empty and ``.`` components are ignored, as pathlib does.
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return (name.startswith("/") or "\\" in name or ".." in parts
            or any(":" in part for part in parts[:1]))


def _note_top_level(head: str, single: bool, top_level: set[str], pth: list[str]) -> None:
    """Collect importable top-level names and top-level .pth files of the lib directory.

    ``head`` is a lib member's first path component; ``single`` says it is the whole path.
    """
    if single and head.endswith(".pth"):
        pth.append(head)
    elif not head.endswith((".dist-info", ".data")):
        top_level.add(head.split(".", 1)[0] if single else head)


def _installed_path(staged: StagedWheel, category: str, relative: PurePosixPath) -> str:
    """Return the RECORD path: relative to the directory that holds the .dist-info (wheel spec)."""
    lib_root = staged.targets[staged.lib_category]
    final = staged.targets[category] / relative
    if category == staged.lib_category:
        return relative.as_posix()
    return Path(os.path.relpath(final, lib_root)).as_posix()


def record_hashes(text: str) -> dict[str, tuple[str, str]]:
    """Map each path of a wheel's RECORD text to its (hash, size) columns."""
    result: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 3 and row[1]:
            result[row[0]] = (row[1], row[2])
    return result


def _make_directories(parents: object) -> None:
    # Each directory is created once; sorting puts every parent before its children.
    for directory in sorted(set(parents)):  # type: ignore[call-overload]
        os.makedirs(directory, exist_ok=True)


def _extract_all(wheel: Path, entries: list[_Entry], executor: Executor,
                 cancel: threading.Event) -> None:
    batches: list[list[_Entry]] = []
    current: list[_Entry] = []
    current_bytes = 0
    for entry in sorted(entries, key=lambda item: item.info.compress_size, reverse=True):
        current.append(entry)
        current_bytes += entry.info.compress_size
        if current_bytes >= _BATCH_BYTES:
            batches.append(current)
            current, current_bytes = [], 0
    if current:
        batches.append(current)
    descriptor = os.open(wheel, os.O_RDONLY | os.O_CLOEXEC)
    try:
        futures: list[Future[None]] = [
            executor.submit(_extract_batch, wheel, descriptor, batch, cancel) for batch in batches
        ]
        errors = [future.exception() for future in futures]
    finally:
        os.close(descriptor)
    for error in errors:
        if error is not None:
            raise error


def _extract_batch(wheel: Path, descriptor: int, batch: list[_Entry],
                   cancel: threading.Event) -> None:
    for entry in batch:
        if cancel.is_set():
            raise CancelledError()
        mode = 0o755 if entry.executable else 0o644
        handle = os.open(entry.destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                         mode)
        try:
            entry.written = _extract_member(wheel, descriptor, entry, handle)
        finally:
            os.close(handle)


def _extract_member(wheel: Path, descriptor: int, entry: _Entry, handle: int) -> str:
    """Inflate one member into ``handle`` with ``pread`` (no shared file position, no lock).

    At most ``_PIECE`` bytes are held at a time, and no more than the declared size is
    written: a member that inflates to more is refused, as is one whose CRC, or whose
    hash in RECORD, does not match. Returns the sha256 of what was written, in RECORD's form.
    """
    info = entry.info
    algorithm = entry.expected.partition("=")[0] or "sha256"
    written = hashlib.sha256()
    checked = written if algorithm == "sha256" else hashlib.new(algorithm)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        _extract_other(wheel, info, handle, (written, checked))
        return _checked_hash(wheel, entry, written, checked)
    position = _data_offset(wheel, descriptor, info)
    remaining = info.compress_size
    inflater = _INFLATE.decompressobj(-15) if info.compress_type == zipfile.ZIP_DEFLATED else None
    crc = size = 0
    pending = b""
    while True:
        if not pending and remaining:
            pending = os.pread(descriptor, min(remaining, _PIECE), position)
            if not pending:
                break  # the file ends before the member does
            position += len(pending)
            remaining -= len(pending)
        if inflater is None:
            data, pending = pending, b""
        else:
            try:
                # One byte more than declared is enough to tell that it lies.
                data = inflater.decompress(pending, min(_PIECE, info.file_size - size + 1))
            except _INFLATE.error:
                raise InvalidWheelError(f"{wheel.name}: {info.filename!r} is corrupt "
                                        "(cannot be inflated)") from None
            pending = inflater.unconsumed_tail
        size += len(data)
        if size > info.file_size:
            raise InvalidWheelError(
                f"Refused {wheel.name}: {info.filename!r} inflates to more than the "
                f"{info.file_size} bytes it declares",
                hint="the wheel is malformed or hostile (a zip bomb?); tell its publisher")
        crc = _INFLATE.crc32(data, crc)
        _write_hashed(handle, data, written, checked)
        if (inflater.eof if inflater is not None else not remaining) or not (data or pending
                                                                              or remaining):
            break
    if crc != info.CRC or size != info.file_size:
        raise InvalidWheelError(f"{wheel.name}: {info.filename!r} is corrupt (CRC mismatch)")
    return _checked_hash(wheel, entry, written, checked)


def _data_offset(wheel: Path, descriptor: int, info: zipfile.ZipInfo) -> int:
    """Return where a member's data starts, after its local header (checked)."""
    header = os.pread(descriptor, _LOCAL_HEADER.size, info.header_offset)
    fields = _LOCAL_HEADER.unpack(header) if len(header) == _LOCAL_HEADER.size else (b"",)
    if fields[0] != b"PK\x03\x04":
        raise InvalidWheelError(f"{wheel.name}: bad local header for {info.filename!r}")
    return int(info.header_offset + _LOCAL_HEADER.size + fields[-2] + fields[-1])


def _write_hashed(handle: int, data: bytes, written: hashlib._Hash,
                  checked: hashlib._Hash) -> None:
    written.update(data)
    if checked is not written:
        checked.update(data)
    view = memoryview(data)
    while view:
        view = view[os.write(handle, view):]


def _checked_hash(wheel: Path, entry: _Entry, written: hashlib._Hash,
                  checked: hashlib._Hash) -> str:
    """Return ``written`` in RECORD's form once ``checked`` matches the RECORD hash."""
    actual = record_hash(checked)
    if entry.expected and actual != entry.expected:
        raise RecordMismatchError(wheel.name, entry.info.filename, entry.expected, actual)
    return record_hash(written)


def _extract_other(wheel: Path, info: zipfile.ZipInfo, handle: int,
                   digests: tuple[hashlib._Hash, hashlib._Hash]) -> None:
    """Write a member compressed some other way (bzip2, lzma) with ``zipfile``, in pieces.

    ``zipfile`` stops at the declared size and checks the CRC at the end.
    """
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(info) as member:
            while data := member.read(_PIECE):
                _write_hashed(handle, data, *digests)
    except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError):
        raise InvalidWheelError(f"{wheel.name}: {info.filename!r} is corrupt or uses a "
                                "compression this Python lacks") from None


def _record_hash(data: bytes) -> str:
    return record_hash(hashlib.sha256(data))


def _shebang(python: str) -> bytes:
    if " " in python or len(python) > 127:
        # The kernel's path cannot be a shebang: re-exec through sh (as distlib does).
        return f"#!/bin/sh\n'''exec' '{python}' \"$0\" \"$@\"\n' '''\n".encode()
    return f"#!{python}\n".encode()


def _write_file(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(handle, data)
    finally:
        os.close(handle)


def _write_scripts(shipped: list[tuple[bytes, Path]], entry_points: str | None,
                   layout: _Layout, staged: StagedWheel, scheme: InstallScheme,
                   staging_name: str) -> None:
    """Write the wheel's own scripts (``#!python`` rewritten) and its entry-point scripts."""
    scripts: list[tuple[str, bytes]] = []
    for data, destination in shipped:
        if data.startswith(b"#!python"):
            first, _, rest = data.partition(b"\n")
            data = _shebang(scheme.python) + rest
        scripts.append((destination.name, data))
    if entry_points is not None:
        scripts += _entry_point_scripts(entry_points, scheme.python)
    if not scripts:
        return
    root = _category_root(staged, "scripts", staging_name)
    for name, data in scripts:
        if "/" in name or name in ("", ".", ".."):
            raise InvalidWheelError(f"unsafe script name {name!r}")
        _write_file(root / name, data, 0o755)
        installed = _installed_path(staged, "scripts", PurePosixPath(name))
        layout.record.append((installed, _record_hash(data), str(len(data))))


def _entry_point_scripts(text: str, python: str) -> list[tuple[str, bytes]]:
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    scripts: list[tuple[str, bytes]] = []
    for section in ("console_scripts", "gui_scripts"):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            match = _ENTRY_POINT.fullmatch(value)
            if match is None or not match.group("attrs"):
                raise InvalidWheelError(f"bad entry point {name} = {value!r}")
            module, attrs = match.group("module"), match.group("attrs")
            head = attrs.split(".", 1)[0]
            body = (
                "# -*- coding: utf-8 -*-\n"
                "import re\nimport sys\n"
                f"from {module} import {head}\n"
                "if __name__ == '__main__':\n"
                "    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])\n"
                f"    sys.exit({attrs}())\n"
            )
            scripts.append((name, _shebang(python) + body.encode()))
    return scripts


def _write_metadata(layout: _Layout, staged: StagedWheel, staging_name: str) -> None:
    dist_dir = _category_root(staged, staged.lib_category, staging_name) / staged.dist_info
    installer = (INSTALLER_NAME + "\n").encode()
    _write_file(dist_dir / "INSTALLER", installer, 0o644)
    layout.record.append((f"{staged.dist_info}/INSTALLER", _record_hash(installer),
                          str(len(installer))))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(layout.record)
    writer.writerow((f"{staged.dist_info}/RECORD", "", ""))
    _write_file(dist_dir / "RECORD", buffer.getvalue().encode(), 0o644)
