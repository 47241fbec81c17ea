"""Client of the repository's own API: ``PUT /api/v1/upload/<filename>`` and the release API.

Both ``ipydeps-repo publish`` and the farm upload through ``publish``; ``yank``, ``unyank``
and ``delete`` with ``--url`` go through ``call_api``. The server's refusals come back as
the typed errors it raised (400 with every problem, 401, 403, 404, 409, 413), its message
and hint kept.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import jsonsafe
from ..errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RepoError,
    TooLargeError,
    ValidationError,
)
from .client import HttpClient, Reply

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
    client: HttpClient | None = None,
) -> PublishReply:
    """Upload one file to the repository at ``base_url`` and return the server's reply.

    The file is streamed from disk with ``Expect: 100-continue``: a refusal before the
    body (bad token, a name or size that will not do) is the server's own message.

    Raises:
        AuthenticationError, PermissionDeniedError, ValidationError, ConflictError,
        TooLargeError, NotFoundError: the server refused the file (its message is kept).
        HttpError: the server could not be reached or did not answer in HTTP.
        RepoError: the file cannot be read, or the server answered another error status.
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
        reply = (client or HttpClient()).send(
            "PUT",
            url,
            body=stream,
            size=size,
            expect_continue=True,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/octet-stream",
            },
        )
    body = reply_json(reply)
    if reply.status >= 300:
        raise error_from_reply(path.name, reply.status, body, prefix=True)
    return PublishReply(
        filename=str(body.get("filename", path.name)),
        status=str(body.get("status", "")),
        path=str(body.get("path", "")),
        sha256=str(body.get("sha256", "")),
        kind=str(body.get("kind", "")),
        warnings=tuple(str(item) for item in body.get("warnings") or ()),
    )


def call_api(
    method: str, url: str, token: str, *, subject: str, client: HttpClient | None = None
) -> dict[str, Any]:
    """Send ``method url`` with the token; return the JSON answer of a success.

    Raises:
        ValidationError, AuthenticationError, PermissionDeniedError, NotFoundError,
        ConflictError, TooLargeError, RepoError: the server's refusal, as it raised it.
        HttpError: the server could not be reached.
    """
    reply = (client or HttpClient()).send(
        method,
        url,
        headers={"Authorization": f"Bearer {token}"},
        body=b"" if method in ("POST", "PUT") else None,
    )
    body = reply_json(reply)
    if reply.status >= 300:
        raise error_from_reply(subject, reply.status, body)
    return body


def reply_json(reply: Reply) -> dict[str, Any]:
    """Return the reply's JSON object; an answer that is not one is kept as its ``error``."""
    try:
        value = jsonsafe.loads(reply.body or b"{}")
    except jsonsafe.JsonInputError:
        return {"error": reply.body[:200].decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {}


def error_from_reply(
    subject: str, status: int, body: dict[str, Any], *, prefix: bool = False
) -> RepoError:
    """Return the typed error the server's answer describes (its message, hint, problems).

    A 400 lists its problems under ``subject``; with ``prefix`` any other message starts
    with ``subject`` too (``demo-1.0.whl: invalid token``), as a command that uploads
    several files says which one failed.
    """
    message = str(body.get("error") or f"HTTP {status}")
    hint = body.get("hint")
    hint = str(hint) if hint else None
    if status == 400:
        problems = body.get("problems")
        if isinstance(problems, list) and problems:
            return ValidationError(subject, [str(item) for item in problems], hint=hint)
        return ValidationError(subject, [message], hint=hint)
    return _BY_STATUS.get(status, RepoError)(
        f"{subject}: {message}" if prefix else message, hint=hint
    )
