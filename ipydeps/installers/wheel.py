"""Unpack a verified wheel file into staging: every member checked first, then inflated in threads.

The wheel's rules come from ``ipydeps.formats`` (the one ``.dist-info``, WHEEL, RECORD and
its policy, ``.data`` categories); where each member goes, the scripts, ``INSTALLER`` and the
installed RECORD are the staging destination's (staging.py), which the stream reader
(wheelstream.py) shares. Nothing is written before every member's name, place and RECORD
row have been checked; members are then inflated in parallel (members.py).
"""

from __future__ import annotations

import os
import threading
import zipfile
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from ..environment import InstallScheme
from ..errors import InvalidWheelError
from ..formats.errors import FormatError
from ..formats.records import UNHASHED_NAMES, parse_record
from ..formats.wheel import DistInfo, find_dist_info, read_wheel_file
from .members import MemberEntry, check_record_hash, extract_members, read_member
from .staging import StagedWheel, StagingDestination

__all__ = ["stage_wheel"]

_HOSTILE = "the wheel is malformed or hostile; tell its publisher"


@dataclass
class _Layout:
    entries: list[MemberEntry] = field(default_factory=list)
    # .data/scripts members: (member, script file name, RECORD hash); rewritten when written.
    scripts: list[tuple[zipfile.ZipInfo, str, str]] = field(default_factory=list)


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
        dist_info = _dist_info(wheel, infos)
        wheel_file = _read_whole(archive, f"{dist_info.folder}/WHEEL", wheel)
        facts = read_wheel_file(wheel_file)
        if facts.problem is not None:
            raise InvalidWheelError(f"{wheel.name}: {facts.problem}")
        destination = StagingDestination(
            scheme,
            staging_name,
            name=dist_info.name,
            version=dist_info.version,
            lib_category=facts.root_category,
            dist_info=dist_info.folder,
        )
        layout = _plan_layout(wheel, archive, infos, dist_info, destination)
        _make_directories(entry.destination.parent for entry in layout.entries)
        extract_members(wheel, layout.entries, executor, cancel)
        for entry in layout.entries:
            destination.add_record(entry.installed, entry.written, entry.info.file_size)
        shipped = []
        for info, name, expected in layout.scripts:
            data = read_member(archive, info.filename, wheel.name)
            check_record_hash(wheel.name, info.filename, expected, data)
            shipped.append((name, data))
        entry_points = f"{dist_info.folder}/entry_points.txt"
        destination.write_scripts(
            shipped,
            read_member(archive, entry_points, wheel.name)
            if entry_points in archive.namelist()
            else None,
        )
    return destination.finish(sum(entry.info.file_size for entry in layout.entries))


def _dist_info(wheel: Path, infos: list[zipfile.ZipInfo]) -> DistInfo:
    try:
        return find_dist_info((info.filename for info in infos), wheel.name)
    except FormatError as error:
        raise InvalidWheelError(f"Refused {wheel.name}: {error.message}", hint=_HOSTILE) from None


def _read_whole(archive: zipfile.ZipFile, name: str, wheel: Path) -> bytes:
    try:
        return read_member(archive, name, wheel.name)
    except KeyError:
        raise InvalidWheelError(f"Refused {wheel.name}: it has no {name}", hint=_HOSTILE) from None


def _plan_layout(
    wheel: Path,
    archive: zipfile.ZipFile,
    infos: list[zipfile.ZipInfo],
    dist_info: DistInfo,
    destination: StagingDestination,
) -> _Layout:
    """Place every member and check it against RECORD; raise listing every problem."""
    record = parse_record(
        _read_whole(archive, f"{dist_info.folder}/RECORD", wheel), dist_info.folder
    )
    problems = list(record.problems)
    layout = _Layout()
    seen: set[str] = set()
    skip = {f"{dist_info.folder}/{name}" for name in UNHASHED_NAMES}
    for info in infos:
        name = info.filename
        if name in seen:
            problems.append(f"{name!r} is in the archive twice")
            continue
        seen.add(name)
        if info.is_dir() or name in skip:
            continue
        placed = destination.place(name, dist_info.data_dir)
        if isinstance(placed, str):
            problems.append(placed)
            continue
        size_problem = record.size_problem(name, info.file_size)
        if size_problem is not None:
            problems.append(size_problem)
        expected = record.hash_of(name)
        if placed.category == "scripts":
            layout.scripts.append((info, placed.relative.name, expected))
            continue
        layout.entries.append(
            MemberEntry(
                info,
                placed.path,
                bool((info.external_attr >> 16) & 0o111),
                installed=placed.installed,
                expected=expected,
            )
        )
    if problems:
        raise InvalidWheelError(f"Refused {wheel.name}: " + "; ".join(problems), hint=_HOSTILE)
    return layout


def _make_directories(parents: Iterable[Path]) -> None:
    # Each directory is created once; sorting puts every parent before its children.
    for directory in sorted(set(parents)):
        os.makedirs(directory, exist_ok=True)
