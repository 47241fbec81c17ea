"""The one verified download: stream to a ``.part`` file, hash, verify, rename."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import ValidationError
from ..fileops import sha256_file
from .client import HttpClient, check_complete, without_credentials

_CHUNK = 1 << 20


def download_verified(client: HttpClient, url: str, target: Path, sha256: str) -> Path:
    """Make ``target`` hold the file at ``url`` whose sha256 is ``sha256``; return ``target``.

    A file already at ``target`` with that sha256 is kept and nothing is downloaded.
    Otherwise the body is streamed to a temp file beside ``target`` (``.<name>.*.part``),
    hashed on the way, and renamed onto ``target`` only when its sha256 matches: a failed
    or tampered download leaves nothing, and ``target`` is never half-written.

    Raises:
        HttpError: the download failed.
        ValidationError: the bytes are not the ones ``sha256`` names.
    """
    if target.is_file() and sha256_file(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    part = Path(name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out, client.open(url) as response:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            check_complete(response, without_credentials(url))
        if digest.hexdigest() != sha256:
            raise ValidationError(
                f"the download of {without_credentials(url)}",
                [f"its sha256 is {digest.hexdigest()}, not the expected {sha256}"],
                hint="the download was corrupted or tampered with; retry",
            )
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target
