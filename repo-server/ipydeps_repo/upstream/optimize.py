"""Turn an upstream wheel into an install-optimized wheel: bytecode shipped, test suites left out.

The result has the same name, version and tags, and a PEP 427 build tag of its own
(``optimized_filename``: ``numpy-2.1.0-cp312-...whl`` becomes
``numpy-2.1.0-1ipydeps-cp312-...whl``), so it sits beside upstream's file instead of
replacing it: pip and uv prefer the higher build tag when nothing pins a hash, and take
upstream's file when a lock or ``--require-hashes`` names its sha256. Every file that is
kept is byte-for-byte the upstream file; what changed is written down inside the wheel in
``<name>-<version>.dist-info/ipydeps-optimized.json``, the WHEEL file gets the ``Build:``
line, and RECORD is rewritten to match.

- Bytecode: ``__pycache__/<module>.<cache tag>.pyc`` for every importable ``.py``, as
  unchecked-hash pycs (PEP 552), only when the target Python is the running interpreter.
  Installers that do not compile (uv, ipydeps) then import without compiling; pip compiles
  anyway and overwrites them. Trade-off: an installed source edited by hand is ignored
  while its pyc exists (delete ``__pycache__`` to undo), as with any unchecked-hash pyc.
- Test suites: every directory named ``tests`` below a top-level package. Modules such as
  ``numpy.testing`` or ``pandas._testing`` stay; ``numpy.test()``-style runners then find
  no tests.
- Compression: ``deflated`` by default. Measured on numpy+scipy+pandas (bench/README.md):
  ``stored`` is 3.1x larger (209 MB vs 66 MB) and saves about 0.6 s of CPU when extracting
  to tmpfs, but nothing on disk, where writing the files dominates (uv installed slower
  from it there); ``deflated`` keeps downloads, storage and temp files upstream's size.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import marshal
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ipydeps.formats.errors import FormatError
from ipydeps.formats.records import parse_record, record_hash_of, render_record, unlisted_problems
from ipydeps.formats.wheel import find_dist_info, member_category

from .. import __version__, jsonsafe
from ..errors import ValidationError
from ..fileops import write_atomic
from ..store.variants import optimized_filename

MARKER_NAME = "ipydeps-optimized.json"
Compression = Literal["stored", "deflated"]
_ZIP_METHOD = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}
# PEP 552 flags: bit 0 = hash-based pyc, bit 1 = check the source. Unchecked hash pycs stay
# valid after install whatever the file times are, and cost no source read at import.
_UNCHECKED_HASH_FLAGS = 0b01
# RECORD signatures cannot survive a rewritten RECORD (wheel spec, "Signed wheel files").
_SIGNATURE_FILES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class OptimizeOptions:
    """What to do to a wheel.

    ``target_python`` is the ``(major, minor)`` the wheel will be installed for; bytecode
    is only shipped when it equals the running interpreter's, because bytecode is
    specific to one CPython version. ``None`` means the running interpreter.
    """

    bytecode: bool = True
    drop_tests: bool = True
    target_python: tuple[int, int] | None = None
    compression: Compression = "deflated"


@dataclass
class _Outcome:
    """What the transformation did, collected while walking the archive."""

    cache_tag: str | None = None
    compiled: int = 0
    failed: list[str] = field(default_factory=list)
    removed_files: int = 0
    removed_bytes: int = 0
    directories: set[str] = field(default_factory=set)
    signatures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OptimizeReport:
    """What ``optimize_wheel`` did to one wheel."""

    source: Path
    output: Path
    already_optimized: bool
    compiled: int
    compile_failures: tuple[str, ...]
    removed_files: int
    removed_bytes: int
    removed_directories: tuple[str, ...]
    size_before: int
    size_after: int


def dist_info_directory(wheel_name: str, names: list[str]) -> str:
    """Return the wheel's single ``.dist-info`` folder (``ipydeps.formats.wheel``'s rule).

    Raises ``ValidationError`` if the file name is not a wheel name or the archive has
    not exactly one ``.dist-info`` folder, naming the file's project and version.
    """
    try:
        return find_dist_info(names, wheel_name).folder
    except FormatError as error:
        raise ValidationError(wheel_name, [error.message]) from None


def validate_record(wheel_name: str, archive: zipfile.ZipFile, dist_info: str) -> None:
    """Check that RECORD lists every file with its right hash and size, and nothing else.

    The rules are ``ipydeps.formats.records``' for what publishes a wheel (unlisted files
    refused). Raises ``ValidationError`` listing every problem found.
    """
    record_path = f"{dist_info}/RECORD"
    files = [info.filename for info in archive.infolist() if not info.is_dir()]
    if record_path not in files:
        raise ValidationError(wheel_name, [f"{record_path} is missing"])
    record = parse_record(archive.read(record_path), dist_info)
    problems = list(record.problems)
    for path in files:
        expected = record.hash_of(path)
        if expected:
            data = archive.read(path)
            problem = record.member_problem(
                path, record_hash_of(data, expected.partition("=")[0]), len(data)
            )
            if problem is not None:
                problems.append(problem)
    problems += unlisted_problems(record, files, dist_info)
    if problems:
        raise ValidationError(wheel_name, problems)


def _site_relative(path: str, dist_info: str) -> str | None:
    """Return the path as installed under site-packages, or None if it goes elsewhere."""
    if path.split("/", 1)[0] == dist_info:
        return None
    placed = member_category(path, dist_info.removesuffix(".dist-info") + ".data", "purelib")
    if isinstance(placed, str) or placed[0] not in ("purelib", "platlib"):
        return None
    return placed[1].as_posix()


def _is_test_suite(site_path: str) -> bool:
    # Only directories named exactly "tests" below a top-level package: modules such as
    # numpy.testing, pandas._testing or scipy._lib._testutils are imported by the library.
    directories = site_path.split("/")[1:-1]
    return "tests" in directories


def _test_directory(site_path: str) -> str:
    parts = site_path.split("/")
    return "/".join(parts[: parts.index("tests", 1) + 1])


def _with_build_tag(wheel_file: bytes, build: str) -> bytes:
    """Return the WHEEL file's text with one ``Build: <build>`` line (wheel spec 1.0)."""
    lines = [
        line
        for line in wheel_file.decode("utf-8").splitlines()
        if line.strip() and not line.lower().startswith("build:")
    ]
    return ("\n".join([*lines, f"Build: {build}"]) + "\n\n").encode("utf-8")


def compile_unchecked_hash(source: bytes, filename: str) -> bytes:
    """Return the bytes of an unchecked-hash pyc (PEP 552) of ``source`` for this interpreter.

    Raises ``SyntaxError``/``ValueError`` when the source does not compile here.
    """
    code = compile(source, filename, "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + _UNCHECKED_HASH_FLAGS.to_bytes(4, "little")
    return header + importlib.util.source_hash(source) + marshal.dumps(code)


def _bytecode_wanted(options: OptimizeOptions) -> bool:
    if not options.bytecode or sys.implementation.cache_tag is None:
        return False
    target = options.target_python or sys.version_info[:2]
    return sys.implementation.name == "cpython" and tuple(target) == sys.version_info[:2]


def is_optimized(wheel: Path) -> bool:
    """Return whether ``wheel`` already carries an ipydeps optimization marker."""
    with zipfile.ZipFile(wheel) as archive:
        dist_info = dist_info_directory(wheel.name, archive.namelist())
        return f"{dist_info}/{MARKER_NAME}" in archive.namelist()


def optimized_source_sha256(wheel: Path) -> str | None:
    """Return the sha256 of the upstream wheel ``wheel`` was optimized from, per its marker.

    None when ``wheel`` is not an optimized wheel (or not a readable one).
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            dist_info = dist_info_directory(wheel.name, archive.namelist())
            marker = jsonsafe.loads(archive.read(f"{dist_info}/{MARKER_NAME}"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, ValidationError):
        return None
    source = marker.get("source") if isinstance(marker, dict) else None
    digest = source.get("sha256") if isinstance(source, dict) else None
    return digest if isinstance(digest, str) else None


def optimize_wheel(
    source: Path, destination: Path, options: OptimizeOptions | None = None
) -> OptimizeReport:
    """Write the optimized form of ``source`` as ``destination/<optimized_filename>``.

    The upstream RECORD is checked first; an already optimized wheel (one with the
    marker) is copied unchanged under its own name. The output is written to a temporary
    file and renamed into place.
    Raises ``ValidationError`` if ``source`` is not a valid wheel (all problems listed).
    """
    options = options or OptimizeOptions()
    source_bytes = source.read_bytes()
    name = optimized_filename(source.name)
    with zipfile.ZipFile(io.BytesIO(source_bytes)) as archive:
        dist_info = dist_info_directory(source.name, archive.namelist())
        validate_record(source.name, archive, dist_info)
        if f"{dist_info}/{MARKER_NAME}" in archive.namelist():
            output = destination / source.name
            write_atomic(output, source_bytes)
            return OptimizeReport(
                source, output, True, 0, (), 0, 0, (), len(source_bytes), len(source_bytes)
            )
        entries, outcome = _transform(archive, dist_info, options)
    build = name.split("-")[2]
    entries = [
        (info, _with_build_tag(data, build) if info.filename == f"{dist_info}/WHEEL" else data)
        for info, data in entries
    ]
    marker = {
        "tool": f"ipydeps-repo {__version__}",
        "source": {"filename": source.name, "sha256": hashlib.sha256(source_bytes).hexdigest()},
        "bytecode": None
        if outcome.cache_tag is None
        else {
            "cache_tag": outcome.cache_tag,
            "invalidation_mode": "unchecked-hash",
            "compiled": outcome.compiled,
            "failed": outcome.failed,
        },
        "removed_tests": {
            "files": outcome.removed_files,
            "bytes": outcome.removed_bytes,
            "directories": sorted(outcome.directories),
        },
        "dropped_signatures": outcome.signatures,
        "compression": options.compression,
        "build_tag": build,
    }
    entries.append(
        (
            _new_info(f"{dist_info}/{MARKER_NAME}", None),
            (json.dumps(marker, indent=2, sort_keys=True) + "\n").encode(),
        )
    )
    data = _pack(entries, f"{dist_info}/RECORD", options.compression)
    output = destination / name
    write_atomic(output, data)
    return OptimizeReport(
        source=source,
        output=output,
        already_optimized=False,
        compiled=outcome.compiled,
        compile_failures=tuple(outcome.failed),
        removed_files=outcome.removed_files,
        removed_bytes=outcome.removed_bytes,
        removed_directories=tuple(sorted(outcome.directories)),
        size_before=len(source_bytes),
        size_after=len(data),
    )


def _transform(
    archive: zipfile.ZipFile, dist_info: str, options: OptimizeOptions
) -> tuple[list[tuple[zipfile.ZipInfo, bytes]], _Outcome]:
    """Return the kept and added entries (RECORD excluded) and what was done."""
    compile_here = _bytecode_wanted(options)
    outcome = _Outcome(cache_tag=sys.implementation.cache_tag if compile_here else None)
    names = set(archive.namelist())
    kept: list[tuple[zipfile.ZipInfo, bytes]] = []
    metadata: list[tuple[zipfile.ZipInfo, bytes]] = []
    for info in archive.infolist():
        if info.is_dir() or info.filename == f"{dist_info}/RECORD":
            continue
        if info.filename.startswith(f"{dist_info}/"):
            if info.filename.endswith(_SIGNATURE_FILES):
                outcome.signatures.append(info.filename)
            else:
                metadata.append((info, archive.read(info)))
            continue
        site_path = _site_relative(info.filename, dist_info)
        if options.drop_tests and site_path is not None and _is_test_suite(site_path):
            outcome.removed_files += 1
            outcome.removed_bytes += info.file_size
            outcome.directories.add(_test_directory(site_path))
            continue
        data = archive.read(info)
        kept.append((info, data))
        if not (compile_here and site_path is not None and info.filename.endswith(".py")):
            continue
        pyc_name = importlib.util.cache_from_source(info.filename)
        if pyc_name in names:
            continue
        try:
            pyc = compile_unchecked_hash(data, site_path)
        except (SyntaxError, ValueError):
            # compileall skips such files too; the source still ships and fails as upstream's would.
            outcome.failed.append(info.filename)
            continue
        kept.append((_new_info(pyc_name, info), pyc))
        outcome.compiled += 1
    return kept + metadata, outcome


def _new_info(name: str, like: zipfile.ZipInfo | None) -> zipfile.ZipInfo:
    # Same timestamp as the source file keeps the output deterministic; mode rw-r--r--.
    info = zipfile.ZipInfo(name, date_time=like.date_time if like else (1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    return info


def _pack(
    entries: list[tuple[zipfile.ZipInfo, bytes]], record_path: str, compression: Compression
) -> bytes:
    buffer = io.BytesIO()
    rows: list[tuple[str, str, str]] = []
    method = _ZIP_METHOD[compression]
    with zipfile.ZipFile(buffer, "w") as output:
        for info, data in entries:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            copy.create_system = info.create_system
            copy.compress_type = method
            output.writestr(copy, data)
            rows.append((info.filename, record_hash_of(data), str(len(data))))
        record = zipfile.ZipInfo(record_path, date_time=entries[-1][0].date_time)
        record.external_attr = 0o644 << 16
        record.compress_type = method
        output.writestr(record, render_record(rows, record_path))
    return buffer.getvalue()
