"""Every request's body is bounded from its headers: how large it may be, how long it may stall.

Tornado reads the whole body of an ordinary handler into memory before ``prepare`` runs,
so a token checked there was checked after up to ``--max-upload`` bytes had been buffered
(issue 15: one 400 MiB POST without a token took the server from 67 MB to 870 MB). Every
handler of the server streams its body instead (``stream_request_body``): ``prepare`` runs
on the headers alone and refuses there (a bad token, a scope, a declared size over the
endpoint's limit); tornado then sends no ``100 Continue`` and closes the connection once
the answer is out, without reading the body. A body that is accepted is counted as it
arrives and answered 413 the moment it passes the limit (a chunked body has no size to
check in advance); the JSON endpoints keep at most ``SMALL_BODY_BYTES`` of it in memory,
and the upload handlers raise the limit (``body_limit``) and write their chunks to disk.
"""

from __future__ import annotations

import re
from typing import Any

import tornado.http1connection
import tornado.web

from ..errors import RepoError, TooLargeError, ValidationError
from .idle_body import IdleBodyWatch

# The JSON endpoints (yank, delete, ...) take a few hundred bytes; anything larger is not
# theirs to read.
SMALL_BODY_BYTES = 64 * 1024
# Tornado's own size check answers a bare "400 Bad Request", and for a body we refused
# unread it writes that after our answer; every limit is enforced here, so it is lifted.
_UNBOUNDED = 1 << 62
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also takes "²", which int() refuses


@tornado.web.stream_request_body
class BoundedBody(IdleBodyWatch):
    """Stream the body through ``receive_chunk`` within ``body_limit()`` and the idle timeout.

    A handler's ``prepare`` checks what the headers say (token, scope, name) and then calls
    ``bound_body()``; its method runs once the whole body has arrived. The default
    ``receive_chunk`` keeps the body in memory for ``body_bytes()``.
    """

    _small_body: bytearray | None = None
    _body_received: int = 0

    def body_limit(self) -> int:
        """Return the most bytes this endpoint's body may hold."""
        return SMALL_BODY_BYTES

    def too_large(self, size: str) -> TooLargeError:
        """Return the error for a body of ``size`` bytes (as text: it may be "more than N")."""
        return TooLargeError(
            f"a body of {size} bytes is over the limit of {self.body_limit()} bytes for "
            f"{self.request.method} {self.request.path}",
            hint="this endpoint takes a small JSON body; files go to /api/v1/upload/ or /legacy/",
        )

    def bound_body(self) -> None:
        """Refuse a declared body over the limit; watch the body's arrival if there is one.

        Raises:
            ValidationError: a Content-Length that is not a byte count (400).
            TooLargeError: a Content-Length over ``body_limit()`` (413).
        """
        declared = self.request.headers.get("Content-Length")
        if declared is not None and _DIGITS.fullmatch(declared) is None:
            raise ValidationError("request", [f"Content-Length {declared!r} is not a byte count"])
        if declared is not None and int(declared) > self.body_limit():
            raise self.too_large(declared)
        self._lift_tornado_limit()
        chunked = "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        if chunked or (declared is not None and int(declared) > 0):
            self._watch_idle()

    async def data_received(self, chunk: bytes) -> None:
        """Count the chunk against the limit (413 past it), then hand it to ``receive_chunk``."""
        if self._finished:
            return
        self._body_received += len(chunk)
        if self._body_received > self.body_limit():
            self.answer_now(self.too_large(f"more than {self.body_limit()}"))
            return
        self._body_moved()
        await self.receive_chunk(chunk)
        self._body_moved()  # a slow disk is not an idle client

    async def receive_chunk(self, chunk: bytes) -> None:
        """Keep the chunk for ``body_bytes()`` (the upload handlers write it to disk instead)."""
        if self._small_body is None:
            self._small_body = bytearray()
        self._small_body += chunk

    def body_bytes(self) -> bytes:
        """Return the body received so far (all of it, once the handler's method runs)."""
        return bytes(self._small_body or b"")

    def answer_now(self, error: RepoError) -> None:
        """Answer ``error`` before the body is complete; tornado then closes the connection."""
        if not self._finished:
            self.send_error(error.status, exc_info=(type(error), error, None))

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        """Answer with an error; a body not read yet is left for tornado to drop unread."""
        self._lift_tornado_limit()
        super().send_error(status_code, **kwargs)

    def on_connection_close(self) -> None:
        """Stop the idle watch: the client is gone."""
        self._stop_watching()
        super().on_connection_close()

    def on_finish(self) -> None:
        """Stop the idle watch: the request is answered."""
        self._stop_watching()
        super().on_finish()

    def _upload_label(self) -> str:
        return f"{self.request.method} {self.request.path}"

    def _received_bytes(self) -> int:
        return self._body_received

    def _receiving(self) -> bool:
        # Tornado resolves this future when the body is complete (web.py, stream mode);
        # there is no public signal between the last chunk and the handler's method.
        return not self.request._body_future.done()

    def _lift_tornado_limit(self) -> None:
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.set_max_body_size(_UNBOUNDED)
