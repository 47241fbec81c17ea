"""HTTP client of the upload API (``PUT /api/v1/upload/<filename>``), standard library only."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RepoError,
    TooLargeError,
    ValidationError,
)

_BY_STATUS: dict[int, type[RepoError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
}


@dataclass(frozen=True)
class PublishReply:
    """The server's answer to one upload; ``warnings`` did not stop the publish."""

    filename: str
    status: str
    path: str
    sha256: str
    kind: str
    warnings: tuple[str, ...] = ()


def upload_url(base_url: str, filename: str, **query: str) -> str:
    """Return the upload URL for ``filename`` with the non-empty query values."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    params = urllib.parse.urlencode({key: value for key, value in query.items() if value})
    name = urllib.parse.quote(filename, safe="")
    return f"{base}api/v1/upload/{name}" + (f"?{params}" if params else "")


def publish(
    base_url: str,
    token: str,
    path: Path,
    *,
    branch: str | None = None,
    repo: str | None = None,
    arch: str | None = None,
    force: bool = False,
    timeout: float = 600.0,
) -> PublishReply:
    """Upload one file to the repository at ``base_url`` and return the server's reply.

    The file is streamed from disk, not read into memory.

    Raises:
        AuthenticationError, PermissionDeniedError, ValidationError, ConflictError,
        TooLargeError, NotFoundError: the server refused the file (its message is kept).
        RepoError: the server could not be reached or answered something unexpected.
    """
    url = upload_url(
        base_url,
        path.name,
        branch=branch or "",
        repo=repo or "",
        arch=arch or "",
        force="1" if force else "",
    )
    try:
        size = path.stat().st_size
        stream = path.open("rb")
    except OSError as error:
        raise RepoError(f"cannot read {path}: {error.strerror}") from None
    with stream:
        request = urllib.request.Request(url, data=stream, method="PUT")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/octet-stream")
        request.add_header("Content-Length", str(size))
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = _json(response.read())
        except urllib.error.HTTPError as error:
            raise _error_from_response(path.name, error.code, _json(error.read())) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise RepoError(
                f"cannot upload {path.name} to {base_url}: {reason}",
                hint="check the URL and that the server is running; a very large file "
                "may also have been cut off by the server's size limit",
            ) from None
    return PublishReply(
        filename=str(body.get("filename", path.name)),
        status=str(body.get("status", "")),
        path=str(body.get("path", "")),
        sha256=str(body.get("sha256", "")),
        kind=str(body.get("kind", "")),
        warnings=tuple(str(item) for item in body.get("warnings") or ()),
    )


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"error": raw[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {}


def _error_from_response(filename: str, status: int, body: dict[str, Any]) -> RepoError:
    message = str(body.get("error") or f"HTTP {status}")
    hint = body.get("hint")
    if status == 400:
        problems = body.get("problems")
        if isinstance(problems, list) and problems:
            return ValidationError(filename, [str(item) for item in problems], hint=hint)
        return ValidationError(filename, [message], hint=hint)
    error_type = _BY_STATUS.get(status, RepoError)
    return error_type(f"{filename}: {message}", hint=hint)
