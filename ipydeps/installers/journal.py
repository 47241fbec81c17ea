"""A write-ahead journal of an install's renames, so that no interruption leaves it half done.

Every rename of a commit is written to ``<lib>/<transaction>.journal`` before it is done
(an intent) and after (done); the journal ends with ``committed`` once every rename is
final, or ``rolled-back`` once every rename was undone. Undoing is the same rule in the
process (a rollback) and in any later one (recovery, from the file): newest first, a
rename is undone only where its destination is there and its source is not, so running
it twice, or after a rollback cut short, changes nothing more; and nothing is ever
deleted by it. A rename that cannot be undone that way (both paths exist, or neither)
is left alone and reported, and then the journal and the staging directories, which
hold the only copies of what was moved aside, stay for the next attempt.

A process that died mid-commit (SIGKILL, out of memory) is recovered by the next
ipydeps call, in any process: its journal is rolled back, unless it ends with
``committed``. Journals of live processes are left alone (their pid, and in this process
the set of open transactions). The journal is flushed, not fsynced: it protects against
a dying process, not a dying machine (whose containers are ephemeral anyway).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from ..processes import process_exists

STAGING_PREFIX = ".ipydeps-tx-"
JOURNAL_SUFFIX = ".journal"
_COMMITTED = "committed"
_ROLLED_BACK = "rolled-back"
# Transactions open in this process: recovery must not take them for a dead one's.
_OPEN: set[str] = set()


class Renamer(Protocol):
    """Renames one path (``os.rename``); a fake one can slow or stop at a chosen rename."""

    def rename(self, source: Path, destination: Path) -> None:
        """Rename ``source`` to ``destination`` (same filesystem); raise ``OSError``."""
        ...


class OsRenamer:
    """The real ``Renamer``."""

    def rename(self, source: Path, destination: Path) -> None:
        """``os.rename``."""
        os.rename(source, destination)


@dataclass
class _Intent:
    source: Path
    destination: Path
    done: bool = False


@dataclass
class Recovery:
    """What recovery did: the transactions it finished or undid, and what it could not undo."""

    recovered: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)  # rolled back (not committed when it died)
    problems: list[str] = field(default_factory=list)


def transaction_name(token: str) -> str:
    """Return the staging name of a new transaction: it carries our pid for liveness checks."""
    return f"{STAGING_PREFIX}{os.getpid()}-{token}"


class RenameJournal:
    """The renames of one transaction, in memory and in ``<lib>/<transaction>.journal``."""

    def __init__(self, path: Path, renamer: Renamer | None = None) -> None:
        self.path = path
        self.renamer = renamer or OsRenamer()
        self._handle: TextIO | None = None
        self._intents: list[_Intent] = []
        _OPEN.add(path.name.removesuffix(JOURNAL_SUFFIX))

    def rename(self, source: Path, destination: Path) -> None:
        """Rename ``source`` to ``destination``, written ahead to the journal (intent, done)."""
        intent = _Intent(source, destination)
        self._intents.append(intent)
        number = len(self._intents)
        self._write(json.dumps(["rename", number, str(source), str(destination)]))
        self.renamer.rename(source, destination)
        intent.done = True
        self._write(json.dumps(["done", number]))

    def undo(self) -> list[str]:
        """Undo every rename, newest first (see the module docstring); return what could not be.

        With nothing left over, the journal ends with ``rolled-back``.
        """
        _, problems = _undo(
            [(intent.source, intent.destination, intent.done) for intent in self._intents],
            self.renamer,
        )
        if not problems:
            self._intents.clear()
            if self._handle is not None:
                self._write(_ROLLED_BACK)
        return problems

    def mark_committed(self) -> None:
        """Note that every rename is final: recovery must not undo them."""
        if self._handle is not None:
            self._write(_COMMITTED)

    def close(self, *, keep: bool = False) -> None:
        """Close the journal; delete it unless ``keep`` (a rollback left something undone)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if not keep:
            self.path.unlink(missing_ok=True)
        _OPEN.discard(self.path.name.removesuffix(JOURNAL_SUFFIX))

    def _write(self, line: str) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._handle.write(line + "\n")
        self._handle.flush()


def _owner_alive(name: str) -> bool:
    """Tell whether the process that started transaction ``name`` still runs it."""
    pid_text = name[len(STAGING_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return name in _OPEN  # ours: alive while open (an interrupted one of ours is not)
    return process_exists(pid)


def is_reserved_name(name: str) -> bool:
    """Tell whether an archive member's path has a component named like our staging dirs.

    Such a member would plant a journal (replayed by the next install) or a directory
    that recovery deletes: a wheel that ships one is refused.
    """
    return any(part.startswith(STAGING_PREFIX) for part in name.split("/"))


def _parse_journal(lines: list[str]) -> tuple[list[tuple[Path, Path, bool]], str | None]:
    """Return the renames of a journal file (source, destination, done) and its ending.

    Lines cut short by a crash, or not ours, are skipped. An older version wrote each
    rename as ``[source, destination]`` before doing it: an intent whose outcome the
    filesystem tells.
    """
    renames: list[list[object]] = []
    numbered: dict[int, list[object]] = {}
    ending: str | None = None
    for line in lines:
        if line in (_COMMITTED, _ROLLED_BACK):
            ending = line
            continue
        try:
            parts = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(parts, list):
            continue
        if len(parts) == 2 and all(isinstance(part, str) and part for part in parts):
            renames.append([Path(parts[0]), Path(parts[1]), False])
        elif (
            len(parts) == 4
            and parts[0] == "rename"
            and isinstance(parts[1], int)
            and all(isinstance(part, str) and part for part in parts[2:])
        ):
            numbered[parts[1]] = [Path(parts[2]), Path(parts[3]), False]
            renames.append(numbered[parts[1]])
        elif len(parts) == 2 and parts[0] == "done" and parts[1] in numbered:
            numbered[parts[1]][2] = True
    return [(Path(str(s)), Path(str(d)), bool(done)) for s, d, done in renames], ending


def _inside(path: Path, roots: list[Path]) -> bool:
    """Tell whether absolute ``path`` (normalized, no ``..`` left) lies under one of ``roots``."""
    if not path.is_absolute():
        return False
    normal = Path(os.path.normpath(path))
    return any(normal != root and normal.is_relative_to(root) for root in roots)


def _undo(renames: list[tuple[Path, Path, bool]], renamer: Renamer) -> tuple[int, list[str]]:
    """Undo ``renames`` newest first where the filesystem shows they were done.

    Returns how many were undone and what could not be.

    A rename whose destination is there and whose source is not is undone; one whose
    source is there and destination not was never done (or is undone already), nor one
    written ahead but not marked done. A done rename with both paths there (something
    else took the path since) or neither (it vanished) is a conflict: reported, and
    nothing is deleted or overwritten for it.
    """
    problems: list[str] = []
    undone = 0
    for source, destination, done in reversed(renames):
        source_there, destination_there = os.path.lexists(source), os.path.lexists(destination)
        if destination_there and not source_there:
            source.parent.mkdir(parents=True, exist_ok=True)
            try:
                renamer.rename(destination, source)
                undone += 1
            except OSError as error:
                problems.append(
                    f"could not move {destination} back to {source} ({error.strerror or error})"
                )
        elif done and source_there == destination_there:
            state = "both exist" if source_there else "neither exists"
            problems.append(f"could not move {destination} back to {source}: {state}")
    return undone, problems


def recover_interrupted(lib: Path, roots: Iterable[Path]) -> Recovery:
    """Finish or undo the installs of processes that died mid-commit; remove their leftovers.

    A journal that ends with ``committed`` or ``rolled-back`` needs only its staging
    directories removed; any other is rolled back, its renames replayed only inside
    ``roots`` (a journal is only a file in site-packages: one planted by a wheel must not
    move files elsewhere). Where a rename cannot be undone, the journal and staging stay
    and ``Recovery.problems`` says why. Transactions of live processes are left alone.
    """
    roots = list(roots)
    recovery = Recovery()
    names: set[str] = set()
    if lib.is_dir():
        names |= {
            entry.removesuffix(JOURNAL_SUFFIX)
            for entry in os.listdir(lib)
            if entry.startswith(STAGING_PREFIX) and entry.endswith(JOURNAL_SUFFIX)
        }
    # A target that does not exist yet is staged below its nearest existing ancestor
    # (wheel.py), e.g. include/ for headers: those ancestors inside the roots hold staging too.
    staging_parents = {
        directory
        for root in roots
        for directory in (root, *root.parents)
        if any(directory.is_relative_to(other) for other in roots)
    }
    for root in staging_parents:
        if root.is_dir():
            names |= {
                entry
                for entry in os.listdir(root)
                if entry.startswith(STAGING_PREFIX) and not entry.endswith(JOURNAL_SUFFIX)
            }
    for name in sorted(names):
        if not _owner_alive(name):
            _recover_one(name, lib / (name + JOURNAL_SUFFIX), roots, staging_parents, recovery)
    return recovery


def _recover_one(
    name: str, journal: Path, roots: list[Path], staging_parents: set[Path], recovery: Recovery
) -> None:
    """Finish or undo transaction ``name`` of a dead process (see ``recover_interrupted``)."""
    if journal.is_file():
        lines = journal.read_text(encoding="utf-8", errors="replace").splitlines()
        renames, ending = _parse_journal(lines)
        if ending is None:
            ours = [
                rename
                for rename in renames
                if _inside(rename[0], roots) and _inside(rename[1], roots)
            ]
            undone, problems = _undo(ours, OsRenamer())
            if problems:
                recovery.problems += [f"{name}: {problem}" for problem in problems]
                return  # keep the journal and the copies in staging for another try
            if undone:
                recovery.undone.append(name)
    for root in staging_parents:
        shutil.rmtree(root / name, ignore_errors=True)
    journal.unlink(missing_ok=True)
    recovery.recovered.append(name)
