"""``PUT /api/v1/upload/<filename>``: stream the body to a temp file, then publish it."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import tornado.http1connection
import tornado.ioloop
import tornado.web

from ..auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenStore
from ..errors import TooLargeError, ValidationError
from ..storage import Store
from ..validation import check_filename
from .base import BaseHandler
from .idle_body import IdleBodyWatch

_TRUE = ("1", "true", "yes", "on")
_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() also takes "²", which int() refuses
logger = logging.getLogger(__name__)


@tornado.web.stream_request_body
class UploadHandler(IdleBodyWatch, BaseHandler):
    """Authenticate and validate before the body; hash while streaming; publish off the loop."""

    def initialize(self, store: Store, tokens: TokenStore, body_timeout: float = 60.0) -> None:
        """Receive the store, the token store and the idle body timeout (no globals)."""
        self.store = store
        self.tokens = tokens
        self.body_timeout = body_timeout
        self._descriptor: int | None = None
        self._temp: Path | None = None
        self._digest = hashlib.sha256()
        self._received = 0
        self._extend_release = False
        # Held while a worker writes a chunk: the descriptor is never closed under it (a
        # client gone mid-upload closes it from the event loop), so the number cannot be
        # reused for another file while a write to it is under way.
        self._writing = threading.Lock()

    def prepare(self) -> None:
        """Refuse early: bad token, bad name or a declared size over the limit.

        Raises:
            AuthenticationError, PermissionDeniedError, ValidationError, TooLargeError.
        """
        if self.request.method != "PUT":
            raise tornado.web.HTTPError(405)
        force = self.get_query_argument("force", "0").lower() in _TRUE
        token = self.tokens.authenticate(
            self.request.headers.get("Authorization"),
            scope=SCOPE_FORCE if force else SCOPE_UPLOAD,
        )
        # Adding a file to a release that has files is the force right too.
        self._extend_release = SCOPE_FORCE in token.scopes
        check_filename(self.path_args[0] if self.path_args else "")
        super().prepare()
        limit = self.store.max_upload_bytes
        declared = self.request.headers.get("Content-Length")
        if declared is not None and _DIGITS.fullmatch(declared) is None:
            raise ValidationError("upload", [f"Content-Length {declared!r} is not a byte count"])
        if declared is not None and int(declared) > limit:
            raise TooLargeError(
                f"upload of {declared} bytes is over the limit of {limit} bytes",
                hint="raise the server's --max-upload size",
            )
        # Tornado drops the connection past this size (bodies without Content-Length).
        connection = self.request.connection
        if isinstance(connection, tornado.http1connection.HTTP1Connection):
            connection.set_max_body_size(limit)
        self._descriptor, self._temp = self.store.new_temp_file()
        self._watch_idle()

    def _upload_label(self) -> str:
        return self.path_args[0] if self.path_args else "?"

    def _received_bytes(self) -> int:
        return self._received

    def _receiving(self) -> bool:
        return self._descriptor is not None

    async def data_received(self, chunk: bytes) -> None:
        """Hash and append a chunk in a worker thread; tornado reads the next one after.

        On a slow disk a write can block for a while, and on the event loop that would
        stall every download the server is serving meanwhile.
        """
        descriptor = self._descriptor
        if descriptor is None:
            return
        self._received += len(chunk)
        self._body_moved()
        await tornado.ioloop.IOLoop.current().run_in_executor(None, self._append, descriptor, chunk)
        self._body_moved()  # a slow disk is not an idle client

    def _append(self, descriptor: int, chunk: bytes) -> None:
        with self._writing:
            if self._descriptor != descriptor:
                return  # discarded meanwhile
            self._digest.update(chunk)
            view = memoryview(chunk)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]

    async def put(self, filename: str) -> None:
        """Publish the received file and answer with the publish result as JSON.

        Raises:
            ValidationError, ConflictError, TooLargeError, ConfigurationError: from the store.
        """
        self._stop_watching()
        temp = self._temp
        if temp is None or self._descriptor is None:
            raise ValidationError("upload", ["no body was received"])
        os.close(self._descriptor)
        self._descriptor = None
        self._temp = None  # the store owns (and always removes) the temp file from here on
        if self._received == 0:
            temp.unlink(missing_ok=True)
            raise ValidationError(f"upload of {filename!r}", ["the body is empty"])
        branch = self.get_query_argument("branch", None)
        repo = self.get_query_argument("repo", None)
        arch = self.get_query_argument("arch", None)
        force = self.get_query_argument("force", "0").lower() in _TRUE
        result = await tornado.ioloop.IOLoop.current().run_in_executor(
            None,
            lambda: self.store.publish(
                temp,
                filename,
                sha256=self._digest.hexdigest(),
                branch=branch,
                repo=repo,
                arch=arch,
                force=force,
                extend_release=self._extend_release,
            ),
        )
        self.set_status(201 if result.status != "unchanged" else 200)
        self.write(result.to_json())

    def on_connection_close(self) -> None:
        """Remove the partial file: the client went away mid-upload, so nothing is published."""
        self._discard()

    def on_finish(self) -> None:
        """Remove the temp file if the request ended before the store took it."""
        self._discard()

    def _discard(self) -> None:
        self._stop_watching()
        with self._writing:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Drop the partial file before answering with the error."""
        self._discard()
        super().write_error(status_code, **kwargs)
