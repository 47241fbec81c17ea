"""Claiming a name in the tree and placing a staged file there (the caller holds the lock)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConflictError
from ..fileops import sha256_file, write_atomic
from .results import PublishStatus


def claim(
    target: Path, digest: str, *, force: bool, known_sha256: str | None = None
) -> PublishStatus:
    """Decide what publishing ``digest`` as ``target`` means.

    ``known_sha256`` is the sha256 of the file at ``target`` when the listing cache
    vouches for it (same size and mtime): then it is not read again.

    Raises:
        ConflictError: ``target`` holds different bytes and ``force`` is false.
    """
    if not target.exists():
        return PublishStatus.CREATED
    if (known_sha256 or sha256_file(target)) == digest:
        return PublishStatus.UNCHANGED
    if not force:
        raise ConflictError(
            f"a different file named {target.name} is already published",
            hint="publish under a new version, or pass force=1 to replace it",
        )
    return PublishStatus.REPLACED


def place(temp: Path, target: Path) -> None:
    """Rename the staged ``temp`` onto ``target``, world-readable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(temp, 0o644)
    os.replace(temp, target)


def place_beside(temp: Path, target: Path, beside: Mapping[str, bytes], *, new: bool) -> None:
    """Write the ``beside`` files, then ``place`` ``temp``.

    If that fails (a full disk), a ``new`` file leaves nothing: what was written beside it
    goes, and so does the folder if it was made for it.
    """
    folder = target.parent
    made_folder = not folder.exists()
    written: list[Path] = []
    try:
        for name, data in beside.items():
            write_atomic(folder / name, data)
            written.append(folder / name)
        place(temp, target)
    except BaseException:
        if new:
            for path in written:
                path.unlink(missing_ok=True)
            if made_folder and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
