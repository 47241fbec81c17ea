"""A musl build's wheel checked as auditwheel would, and tagged for what it honestly is.

Every shared library an ELF file of the wheel needs must be inside the wheel, be musl's libc,
or be a library the farm packages as its own apk (the shared OpenBLAS): anything else means the
wheel would not load on a clean Alpine, and the build fails. A wheel that needs nothing outside
itself and libc is a real ``musllinux_1_2`` wheel and is published as a wheel and as an apk; one
that links a shared library from an apk keeps pip's ``linux_<arch>`` tag and is published only
as an apk, whose ``so:`` dependency brings that library.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ipydeps.formats.records import record_hash_of

from ..apk.elf import read_elf
from ..errors import BuildError

# musl's libc and loader: always there where musl runs.
MUSL_LIBC = frozenset({"libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"})
_GLIBC = re.compile(r"^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|ld-linux.*)$")
MUSLLINUX_TAG = "musllinux_1_2"


@dataclass(frozen=True)
class LinkReport:
    """What a wheel's machine code links from the farm's apks (nothing: it is self-contained)."""

    elf_files: int
    from_apks: tuple[str, ...]  # sonames taken from the farm's own apks (e.g. libopenblas.so.0)

    @property
    def self_contained(self) -> bool:
        """Whether it needs nothing but itself and musl's libc."""
        return not self.from_apks


def check_links(wheel: Path, *, apk_libraries: Mapping[str, str]) -> LinkReport:
    """Read every ELF file of ``wheel`` and check each library it needs is accounted for.

    ``apk_libraries`` maps a soname to the apk that provides it (``{"libopenblas.so.0":
    "openblas"}``).

    Raises:
        BuildError: naming every file that needs a library that is neither in the wheel,
            musl's libc, nor one of ``apk_libraries`` (or that needs glibc).
    """
    needs, inside, elf_files = _read_links(wheel)
    problems = []
    from_apks = []
    for library, files in sorted(needs.items()):
        if library in inside or library in MUSL_LIBC:
            continue
        if library in apk_libraries:
            from_apks.append(library)
        elif _GLIBC.match(library):
            problems.append(f"{files[0]} needs {library}: it was linked against glibc")
        else:
            problems.append(
                f"{files[0]} (and {len(files) - 1} more) needs {library}, which is neither in "
                "the wheel nor provided by an apk the farm builds"
            )
    if problems:
        raise BuildError(
            f"{wheel.name} would not load on a clean Alpine: " + "; ".join(problems),
            hint="bundle the library or package it as an apk the wheel's apk depends on",
        )
    return LinkReport(elf_files, tuple(from_apks))


def _read_links(wheel: Path) -> tuple[dict[str, list[str]], set[str], int]:
    """Return (library -> files needing it, names of the libraries inside, ELF file count)."""
    needs: dict[str, list[str]] = {}
    inside: set[str] = set()
    elf_files = 0
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            with archive.open(member) as stream:
                if member.is_dir() or stream.read(4) != b"\x7fELF":
                    continue
            info = read_elf(archive.read(member), f"{wheel.name}: {member.filename}")
            if info is None:
                continue
            elf_files += 1
            inside.update(
                name for name in (member.filename.rsplit("/", 1)[-1], info.soname) if name
            )
            for library in info.needed:
                needs.setdefault(library, []).append(member.filename)
    return needs, inside, elf_files


def retag_wheel(wheel: Path, platform: str) -> Path:
    """Rewrite ``wheel`` for another platform tag (WHEEL's Tag lines, RECORD, file name).

    Returns the new path; the old file is removed. A wheel already tagged so is returned as is.

    Raises:
        BuildError: the file name or WHEEL file is not that of a wheel.
    """
    parts = wheel.name[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        raise BuildError(f"{wheel.name} is not a wheel file name")
    if parts[-1] == platform:
        return wheel
    parts[-1] = platform
    target = wheel.with_name("-".join(parts) + ".whl")
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        dist_info = next((n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL")), None)
        if dist_info is None:
            raise BuildError(f"{wheel.name} has no .dist-info/WHEEL")
        wheel_file, record_file = f"{dist_info}/WHEEL", f"{dist_info}/RECORD"
        lines = source.read(wheel_file).decode().splitlines()
        tags = [line for line in lines if line.startswith("Tag: ")]
        rewritten = [line for line in lines if not line.startswith("Tag: ")]
        for tag in dict.fromkeys(line.rsplit("-", 1)[0] + "-" + platform for line in tags):
            rewritten.append(tag)
        wheel_data = ("\n".join(rewritten) + "\n").encode()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                if info.filename in (wheel_file, record_file):
                    continue
                out.writestr(info, source.read(info))
            out.writestr(wheel_file, wheel_data)
            record = _record(source.read(record_file), {wheel_file: wheel_data})
            out.writestr(record_file, record)
    wheel.unlink()
    return target


def strip_wheel(wheel: Path, strip: str) -> int:
    """Strip every ELF file of ``wheel`` in place (``strip --strip-unneeded``, as abuild does).

    zig links debug information into what it builds; upstream's wheels and Alpine's apks ship
    without it. RECORD is rewritten for the changed files. Returns the bytes saved.

    Raises:
        BuildError: ``strip`` fails on a member.
    """
    changed: dict[str, bytes] = {}
    with zipfile.ZipFile(wheel) as source, tempfile.TemporaryDirectory() as scratch:
        for info in source.infolist():
            data = source.read(info)
            if info.is_dir() or data[:4] != b"\x7fELF":
                continue
            path = Path(scratch) / "member"
            path.write_bytes(data)
            done = subprocess.run(
                [strip, "--strip-unneeded", str(path)], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise BuildError(f"{wheel.name}: strip {info.filename} failed: {done.stderr}")
            changed[info.filename] = path.read_bytes()
        if not changed:
            return 0
        record_file = next(n for n in source.namelist() if n.endswith(".dist-info/RECORD"))
        partial = wheel.with_name(wheel.name + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                if info.filename == record_file:
                    continue
                out.writestr(info, changed.get(info.filename) or source.read(info))
            out.writestr(record_file, _record(source.read(record_file), changed))
        before = sum(source.getinfo(name).file_size for name in changed)
    os.replace(partial, wheel)
    return before - sum(len(data) for data in changed.values())


def _record(record: bytes, changed: Mapping[str, bytes]) -> str:
    rows = list(csv.reader(io.StringIO(record.decode())))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        if row and row[0] in changed:
            data = changed[row[0]]
            row = [row[0], record_hash_of(data), str(len(data))]
        writer.writerow(row)
    return out.getvalue()


def musllinux_platform(arch: str) -> str:
    """Return the musllinux platform tag for ``arch`` (``musllinux_1_2_x86_64``)."""
    return f"{MUSLLINUX_TAG}_{arch}"
