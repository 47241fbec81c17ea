"""``PUT /api/v1/upload/<filename>``: stream the body to a temp file, then publish it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.web

from ..errors import RepoError, TooLargeError, ValidationError
from ..fileops import storage_error
from ..store.store import Store
from ..validation.names import check_filename, project_of_filename
from .auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenStore
from .base import BaseHandler

_TRUE = ("1", "true", "yes", "on")
logger = logging.getLogger(__name__)


@tornado.web.stream_request_body
class UploadHandler(BaseHandler):
    """Authenticate and validate before the body; hash while streaming; publish off the loop."""

    def initialize(self, store: Store, tokens: TokenStore) -> None:
        """Receive the store and the token store (no globals)."""
        self.store = store
        self.tokens = tokens
        self._descriptor: int | None = None
        self._temp: Path | None = None
        self._digest = hashlib.sha256()
        self._extend_release = False
        # A failure to store a chunk (a full disk): answered once the body is in, so the
        # client reads the answer instead of a reset connection.
        self._failure: RepoError | None = None
        # Held while a worker writes a chunk: the descriptor is never closed under it (a
        # client gone mid-upload closes it from the event loop), so the number cannot be
        # reused for another file while a write to it is under way.
        self._writing = threading.Lock()

    def prepare(self) -> None:
        """Refuse from the headers alone: bad token or scope, bad name, a size over the limit.

        Raises:
            AuthenticationError, PermissionDeniedError, ValidationError, TooLargeError.
        """
        if self.request.method != "PUT":
            raise tornado.web.HTTPError(405)
        filename = self.path_args[0] if self.path_args else ""
        force = self.get_query_argument("force", "0").lower() in _TRUE
        project = project_of_filename(filename)
        token = self.tokens.authenticate(
            self.request.headers.get("Authorization"),
            scope=SCOPE_FORCE if force else SCOPE_UPLOAD,
            project=project,
        )
        # Adding a file to a release that has files is the force right too.
        self._extend_release = SCOPE_FORCE in token.scopes
        check_filename(filename)
        if project is None and token.projects is not None:
            raise ValidationError(
                f"file name {filename!r}",
                ["it names no project, so a token limited to projects cannot publish it"],
            )
        super().prepare()
        try:
            self._descriptor, self._temp = self.store.new_temp_file()
        except OSError as error:
            raise storage_error(error, filename) from None

    def body_limit(self) -> int:
        """Return ``--max-upload``."""
        return self.store.max_upload_bytes

    def too_large(self, size: str) -> TooLargeError:
        """Return the 413 for an upload of ``size`` bytes."""
        return TooLargeError(
            f"upload of {size} bytes is over the limit of {self.store.max_upload_bytes} bytes",
            hint="raise the server's --max-upload size",
        )

    def _upload_label(self) -> str:
        return f"upload of {self.path_args[0] if self.path_args else '?'}"

    async def receive_chunk(self, chunk: bytes) -> None:
        """Hash and append a chunk in a worker thread; tornado reads the next one after.

        On a slow disk a write can block for a while, and on the event loop that would
        stall every download the server is serving meanwhile. A write that fails (a full
        disk) drops the file; the rest of the body is read and thrown away.
        """
        descriptor = self._descriptor
        if descriptor is None:
            return
        try:
            await tornado.ioloop.IOLoop.current().run_in_executor(
                None, self._append, descriptor, chunk
            )
        except OSError as error:
            self._failure = storage_error(error, self.path_args[0])
            logger.warning("%s: %s", self._upload_label(), self._failure.message)
            self._drop_file()  # the idle watch goes on: the rest of the body must come

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
        if self._failure is not None:
            raise self._failure
        temp = self._temp
        if temp is None or self._descriptor is None:
            raise ValidationError("upload", ["no body was received"])
        os.close(self._descriptor)
        self._descriptor = None
        self._temp = None  # the store owns (and always removes) the temp file from here on
        if self._body_received == 0:
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
        super().on_connection_close()

    def on_finish(self) -> None:
        """Remove the temp file if the request ended before the store took it."""
        self._discard()
        super().on_finish()

    def _discard(self) -> None:
        self._stop_watching()
        self._drop_file()

    def _drop_file(self) -> None:
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
