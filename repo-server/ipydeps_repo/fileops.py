"""File primitives: atomic writes, hashing, and the error a failed write of an upload is."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from .errors import RepoError, StorageFullError

_CHUNK = 1024 * 1024
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


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
