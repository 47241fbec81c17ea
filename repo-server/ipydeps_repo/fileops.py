"""File primitives of the store: atomic writes, hashing, and the result of one publish."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import RepoError, StorageFullError

_CHUNK = 1024 * 1024
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class PublishResult:
    """What publishing one file did; ``status`` is created, unchanged or replaced.

    ``warnings`` describes what went wrong without stopping the publish, e.g. a wheel's
    stored copy that could not be written.
    """

    kind: str
    filename: str
    path: str
    sha256: str
    size: int
    status: str
    name: str
    version: str
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict (the upload API's response body)."""
        return asdict(self)


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temp file beside it and ``os.replace``.

    Readers (and a CDN sync) see the old file or the new one, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def storage_error(error: OSError, filename: str) -> RepoError:
    """Return the error to answer when storing an upload of ``filename`` failed with ``error``.

    A full disk or quota is a 507 that says so (the client can do nothing but tell the
    maintainer or retry later); any other failure to write is a 500 with the system's reason.
    """
    if error.errno in NO_SPACE:
        return StorageFullError(
            f"no space left on device: {filename} could not be stored, and nothing of it was kept",
            hint="the repository's disk is full; free space there (or tell its maintainer) "
            "and upload again",
        )
    return RepoError(
        f"{filename} could not be stored: {error.strerror or error}",
        hint="the repository could not write to its disk; tell its maintainer",
    )
