"""A write-ahead journal of an install's renames, so an install killed half-way is undone later.

In-process failures (exceptions, ``KeyboardInterrupt``) are rolled back from memory. A
kernel killed outright (SIGKILL, out of memory) cannot do that, so every rename is
written here first; the next install (any process) rolls back journals whose process
is gone and deletes their staging directories. The journal is flushed, not fsynced:
it protects against a dying process, not a dying machine (whose containers are
ephemeral anyway).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ..processes import process_exists

STAGING_PREFIX = ".ipydeps-tx-"
JOURNAL_SUFFIX = ".journal"
_COMMITTED = "committed"


def transaction_name(token: str) -> str:
    """Return the staging name of a new transaction: it carries our pid for liveness checks."""
    return f"{STAGING_PREFIX}{os.getpid()}-{token}"


class RenameJournal:
    """Appends one line per rename (before doing it) to ``<lib>/<transaction>.journal``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: TextIO | None = None

    def record(self, source: Path, destination: Path) -> None:
        """Note that ``source`` is about to be renamed to ``destination``."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)
        self._handle.write(json.dumps([str(source), str(destination)]) + "\n")
        self._handle.flush()

    def mark_committed(self) -> None:
        """Note that every rename is final: recovery must not undo them."""
        if self._handle is not None:
            self._handle.write(_COMMITTED + "\n")
            self._handle.flush()

    def discard(self) -> None:
        """Close and delete the journal (the transaction is finished either way)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.path.unlink(missing_ok=True)


def _owner_alive(name: str) -> bool:
    """Tell whether the process that started transaction ``name`` still runs."""
    pid_text = name[len(STAGING_PREFIX):].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return pid != os.getpid() and process_exists(pid)


def is_reserved_name(name: str) -> bool:
    """Tell whether an archive member's path has a component named like our staging dirs.

    Such a member would plant a journal (replayed by the next install) or a directory
    that recovery deletes: a wheel that ships one is refused.
    """
    return any(part.startswith(STAGING_PREFIX) for part in name.split("/"))


def _parse_line(line: str) -> tuple[Path, Path] | None:
    """Return the (source, destination) of one journal line, or None if it is not one."""
    try:
        parts = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(parts, list) and len(parts) == 2
            and all(isinstance(part, str) and part for part in parts)):
        return None
    return Path(parts[0]), Path(parts[1])


def _inside(path: Path, roots: list[Path]) -> bool:
    """Tell whether absolute ``path`` (normalized, no ``..`` left) lies under one of ``roots``."""
    if not path.is_absolute():
        return False
    normal = Path(os.path.normpath(path))
    return any(normal != root and normal.is_relative_to(root) for root in roots)


def recover_interrupted(lib: Path, roots: Iterable[Path]) -> list[str]:
    """Undo installs whose process died mid-commit; delete their leftovers; return their names.

    Transactions of live processes are left alone. Renames are undone newest first,
    each only if its destination still exists and its source does not.
    """
    roots = list(roots)
    recovered: list[str] = []
    names: set[str] = set()
    if lib.is_dir():
        names |= {entry.removesuffix(JOURNAL_SUFFIX) for entry in os.listdir(lib)
                  if entry.startswith(STAGING_PREFIX) and entry.endswith(JOURNAL_SUFFIX)}
    # A target that does not exist yet is staged below its nearest existing ancestor
    # (wheel.py), e.g. include/ for headers: those ancestors inside the roots hold staging too.
    staging_parents = {directory for root in roots for directory in (root, *root.parents)
                       if any(directory.is_relative_to(other) for other in roots)}
    for root in staging_parents:
        if root.is_dir():
            names |= {entry for entry in os.listdir(root) if entry.startswith(STAGING_PREFIX)
                      and not entry.endswith(JOURNAL_SUFFIX)}
    for name in sorted(names):
        if _owner_alive(name):
            continue
        journal = lib / (name + JOURNAL_SUFFIX)
        if journal.is_file():
            _undo(journal.read_text(encoding="utf-8", errors="replace").splitlines(), roots)
        for root in staging_parents:
            shutil.rmtree(root / name, ignore_errors=True)
        journal.unlink(missing_ok=True)
        recovered.append(name)
    return recovered


def _undo(lines: list[str], roots: list[Path]) -> None:
    """Undo the renames of ``lines``, newest first, each only inside the install ``roots``.

    A journal is only a file in site-packages: anyone who can write one (a wheel that
    shipped it, say) must not get renames done elsewhere. Ours never leave the roots.
    """
    if lines and lines[-1] == _COMMITTED:
        return
    for line in reversed(lines):
        renamed = _parse_line(line)
        if renamed is None or not all(_inside(path, roots) for path in renamed):
            continue  # cut short by the crash (never done), or not one of ours
        source, destination = renamed
        if os.path.lexists(destination) and not os.path.lexists(source):
            source.parent.mkdir(parents=True, exist_ok=True)
            os.rename(destination, source)
