"""HTTP client of the upload API (``PUT /api/v1/upload/<filename>``), standard library only."""

from __future__ import annotations

import contextlib
import http.client
import select
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .. import jsonsafe
from ..errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RepoError,
    StorageFullError,
    TooLargeError,
    ValidationError,
)

_BY_STATUS: dict[int, type[RepoError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: TooLargeError,
    507: StorageFullError,
}
_MAX_REPLY = 1 << 20  # an answer is a small JSON document; a hostile server's is cut here
_MAX_LINE = 65536


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
    continue_timeout: float = 5.0,
) -> PublishReply:
    """Upload one file to the repository at ``base_url`` and return the server's reply.

    The file is streamed from disk, not read into memory. The request says ``Expect:
    100-continue`` and the body goes only once the server agrees (or has not answered
    within ``continue_timeout`` seconds, as a server that ignores the header won't): a
    refusal (bad token, a name or size that will not do) is read and reported as the
    server's own message, not as a connection reset halfway through a large body.

    Raises:
        AuthenticationError, PermissionDeniedError, ValidationError, ConflictError,
        TooLargeError, NotFoundError, StorageFullError: the server refused the file (its
            message is kept).
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
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RepoError(f"{base_url!r} is not an http(s) URL", hint="e.g. http://HOST:8080/")
    try:
        size = path.stat().st_size
        stream = path.open("rb")
    except OSError as error:
        raise RepoError(f"cannot read {path}: {error.strerror}") from None
    connection_type = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_type(parts.hostname, parts.port, timeout=timeout)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        with stream:
            status, body = _exchange(connection, target, token, stream, size, continue_timeout)
    except (OSError, http.client.HTTPException) as error:
        raise RepoError(
            f"cannot upload {path.name} to {base_url}: {error}",
            hint="check the URL and that the server is running",
        ) from None
    finally:
        connection.close()
    if status >= 300:
        raise _error_from_response(path.name, status, body)
    return PublishReply(
        filename=str(body.get("filename", path.name)),
        status=str(body.get("status", "")),
        path=str(body.get("path", "")),
        sha256=str(body.get("sha256", "")),
        kind=str(body.get("kind", "")),
        warnings=tuple(str(item) for item in body.get("warnings") or ()),
    )


def _exchange(
    connection: http.client.HTTPConnection,
    target: str,
    token: str,
    stream: BinaryIO,
    size: int,
    continue_timeout: float,
) -> tuple[int, dict[str, Any]]:
    """Send the request, the body only if the server wants it; return (status, JSON body)."""
    connection.putrequest("PUT", target, skip_accept_encoding=True)
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(size))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    sock = connection.sock
    readable, _, _ = select.select([sock], [], [], continue_timeout)
    if readable:
        # Only this interim answer is read here: after a 100 the server sends nothing
        # until the body is in, so no byte of the final response is taken from the socket.
        with sock.makefile("rb") as reader:
            status, headers = _read_head(reader)
            if status != 100:
                length = int(headers.get("Content-Length") or 0)
                return status, _json(reader.read(min(length, _MAX_REPLY)))
    try:
        connection.send(stream)
    except OSError:
        # The server may have answered and closed while the body was on its way
        # (too large, too slow): its answer says more than the broken pipe.
        with contextlib.suppress(OSError, http.client.HTTPException):
            response = connection.getresponse()
            return response.status, _json(response.read(_MAX_REPLY))
        raise
    response = connection.getresponse()
    return response.status, _json(response.read(_MAX_REPLY))


def _read_head(reader: BinaryIO) -> tuple[int, http.client.HTTPMessage]:
    """Read a status line and headers; return (status, headers).

    Raises:
        http.client.HTTPException: the server's answer is not HTTP.
    """
    line = reader.readline(_MAX_LINE + 1)
    fields = line.decode("latin-1").split(None, 2)
    if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
        raise http.client.BadStatusLine(line.decode("latin-1", "replace")[:100])
    return int(fields[1]), http.client.parse_headers(reader)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = jsonsafe.loads(raw or b"{}")
    except jsonsafe.JsonInputError:
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
