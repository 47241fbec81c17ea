"""``POST /legacy/``: the upload API of PyPI that twine, ``uv publish``, poetry and flit speak.

The body is a ``multipart/form-data`` form: ``:action=file_upload``, ``protocol_version=1``,
the distribution in the ``content`` part, its ``name``, ``version`` and ``filetype``,
optional ``sha256_digest``/``md5_digest``/``blake2_256_digest``, and metadata fields.
Credentials are HTTP Basic with the token as the password (``__token__`` or any user
name, as PyPI and pypiserver accept), or our ``Bearer`` header. The content part is
streamed to a temp file as it arrives (hashed on the way), then handed to the same
``Store.publish`` as the PUT API, so both APIs validate and publish identically.

Errors are answered as twine and uv show them: twine prints the HTTP reason phrase, uv
the body, so both carry the message (and the body the hint and every problem).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import tornado.ioloop
import tornado.web

from ..errors import RepoError, TooLargeError, ValidationError
from ..fileops import storage_error
from ..store.store import Store
from ..validation.names import project_of_filename
from .auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenInfo, TokenStore
from .base import BaseHandler
from .legacy_form import name_problems, reason_phrase, token_header
from .multipart import (
    MultipartError,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    boundary_of,
)

# Room for the form fields beside the file (twine sends the description, which PyPI
# caps far below this).
FIELDS_BUDGET = 4 * 1024 * 1024
_DIGESTS = {
    "sha256_digest": "sha256",
    "md5_digest": "md5",
    "blake2_256_digest": "blake2_256",
}


@tornado.web.stream_request_body
class LegacyUploadHandler(BaseHandler):
    """Authenticate before the body, stream the form's file to disk, publish off the loop.

    The form names its project only in the body: a token limited to projects is checked
    against the file's name when the file part begins, before a byte of it is stored.
    """

    def initialize(self, store: Store, tokens: TokenStore) -> None:
        """Receive the store and the token store (no globals)."""
        self.store = store
        self.tokens = tokens
        self._token: TokenInfo | None = None
        self._parser: MultipartParser | None = None
        self._failure: RepoError | None = None
        self._fields: dict[str, list[str]] = {}
        self._field_name: str | None = None
        self._field_bytes = bytearray()
        self._fields_size = 0
        self._filename: str | None = None
        self._descriptor: int | None = None
        self._temp: Path | None = None
        self._received = 0
        self._hashes: dict[str, Any] = {
            "sha256": hashlib.sha256(),
            "md5": hashlib.md5(usedforsecurity=False),
            "blake2_256": hashlib.blake2b(digest_size=32),
        }
        # Held while a worker handles a chunk, so the descriptor is never closed under it.
        self._working = threading.Lock()
        self._extend_release = False

    def prepare(self) -> None:
        """Refuse early: other methods, bad credentials, not a form, or too large.

        Raises:
            AuthenticationError, PermissionDeniedError, ValidationError, TooLargeError.
        """
        if self.request.method != "POST":
            raise tornado.web.HTTPError(
                405, "the upload API takes POST (twine upload --repository-url <this URL>)"
            )
        token = self.tokens.authenticate(
            token_header(self.request.headers.get("Authorization")), scope=SCOPE_UPLOAD
        )
        self._token = token
        # As in the PUT API: adding a file to a release that has files is the force right.
        self._extend_release = SCOPE_FORCE in token.scopes
        try:
            boundary = boundary_of(self.request.headers.get("Content-Type"))
        except MultipartError as error:
            raise ValidationError("upload form", [str(error)]) from None
        super().prepare()
        self._parser = MultipartParser(boundary)

    def body_limit(self) -> int:
        """Return ``--max-upload`` and the room of the form's other fields."""
        return self.store.max_upload_bytes + FIELDS_BUDGET

    def too_large(self, size: str) -> TooLargeError:
        """Return the 413 for a form of ``size`` bytes."""
        return TooLargeError(
            f"upload of {size} bytes is over the limit of {self.store.max_upload_bytes} bytes",
            hint="raise the server's --max-upload size",
        )

    def _upload_label(self) -> str:
        return f"upload of {self._filename or 'a form'}"

    async def receive_chunk(self, chunk: bytes) -> None:
        """Parse, hash and write a chunk in a worker thread (a slow disk stalls no download)."""
        if self._parser is None or self._failure is not None:
            return
        await tornado.ioloop.IOLoop.current().run_in_executor(None, self._consume, chunk)

    def _consume(self, chunk: bytes) -> None:
        with self._working:
            if self._parser is None or self._failure is not None:
                return
            try:
                for event in self._parser.feed(chunk):
                    self._handle(event)
            except MultipartError as error:
                self._fail(ValidationError("upload form", [str(error)]))
            except RepoError as error:
                self._fail(error)
            except OSError as error:
                # A full disk: answer it (507) once the body is in, and keep nothing.
                self._fail(storage_error(error, self._filename or "the upload"))

    def _handle(self, event: PartStart | PartData | PartEnd) -> None:
        if isinstance(event, PartStart):
            if event.name == "content":
                if self._filename is not None:
                    raise ValidationError("upload form", ["the form has two 'content' parts"])
                self._filename = event.filename or ""
                self._check_scope(self._filename)
                self._descriptor, self._temp = self.store.new_temp_file()
            self._field_name = event.name
            self._field_bytes.clear()
        elif isinstance(event, PartData):
            if self._field_name == "content":
                self._write_content(event.data)
            else:
                self._fields_size += len(event.data)
                if self._fields_size > FIELDS_BUDGET:
                    raise TooLargeError(
                        f"the form's fields are over {FIELDS_BUDGET} bytes",
                        hint="shorten the description",
                    )
                self._field_bytes += event.data
        elif self._field_name is not None and self._field_name != "content":
            value = self._field_bytes.decode("utf-8", errors="replace")
            self._fields.setdefault(self._field_name, []).append(value)

    def _check_scope(self, filename: str) -> None:
        """Refuse a file outside the token's projects before anything of it is written.

        Raises:
            PermissionDeniedError: the file's project is outside the token's scope.
            ValidationError: the token is limited to projects and the name gives none.
        """
        token = self._token
        if token is None or token.projects is None:
            return
        project = project_of_filename(filename)
        if project is None:
            raise ValidationError(
                f"file name {filename!r}",
                ["it names no project, so a token limited to projects cannot publish it"],
            )
        token.check_project(project)

    def _write_content(self, data: bytes) -> None:
        if self._descriptor is None:
            return
        self._received += len(data)
        if self._received > self.store.max_upload_bytes:
            raise TooLargeError(
                f"{self._filename} is over the limit of {self.store.max_upload_bytes} bytes",
                hint="raise the server's --max-upload size",
            )
        for digest in self._hashes.values():
            digest.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self._descriptor, view)
            view = view[written:]

    def _fail(self, error: RepoError) -> None:
        """Remember the first failure; drop the partial file and ignore the rest of the body."""
        self._failure = error
        self._close_temp(unlink=True)

    async def post(self) -> None:
        """Check the form, then publish the file as the PUT API does; answer 200 with JSON.

        Raises:
            ValidationError, ConflictError, TooLargeError: as the store raises them.
        """
        self._stop_watching()
        with self._working:
            failure = self._failure
            if failure is None and self._parser is not None:
                try:
                    self._parser.close()
                except MultipartError as error:
                    failure = ValidationError("upload form", [str(error)])
        if failure is not None:
            raise failure
        filename = self._filename
        temp = self._temp
        if filename is None or temp is None:
            raise ValidationError("upload form", ["the form has no 'content' file part"])
        problems = self._form_problems(filename)
        if problems:
            raise ValidationError(f"upload of {filename!r}", problems)
        self._close_temp(unlink=False)
        self._temp = None  # the store owns (and always removes) the temp file from here on
        digest = self._hashes["sha256"].hexdigest()
        result = await tornado.ioloop.IOLoop.current().run_in_executor(
            None,
            lambda: self.store.publish(
                temp, filename, sha256=digest, force=False, extend_release=self._extend_release
            ),
        )
        self.set_status(200)
        self.write(result.to_json())

    def _field(self, name: str) -> str | None:
        values = self._fields.get(name)
        return values[0].strip() if values else None

    def _form_problems(self, filename: str) -> list[str]:
        """Return every way the form's fields disagree with the file or the legacy API."""
        problems = []
        action = self._field(":action")
        if action != "file_upload":
            problems.append(f"':action' must be 'file_upload', not {action!r}")
        protocol = self._field("protocol_version")
        if protocol not in (None, "1"):
            problems.append(f"'protocol_version' {protocol!r} is not supported (use 1)")
        if self._received == 0:
            problems.append("the 'content' part is empty")
        for field, algorithm in _DIGESTS.items():
            sent = self._field(field)
            actual = self._hashes[algorithm].hexdigest()
            if sent and sent.lower() != actual:
                problems.append(f"'{field}' {sent!r} does not match the received file ({actual})")
        problems += name_problems(
            filename, self._field("name"), self._field("version"), self._field("filetype")
        )
        return problems

    def _close_temp(self, *, unlink: bool) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None
        if unlink and self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None

    def on_connection_close(self) -> None:
        """Remove the partial file: the client went away, so nothing is published."""
        self._discard()
        super().on_connection_close()

    def on_finish(self) -> None:
        """Remove the temp file if the request ended before the store took it."""
        self._discard()
        super().on_finish()

    def _discard(self) -> None:
        with self._working:
            self._close_temp(unlink=True)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Answer in text: the message as the reason phrase (twine), and in the body (uv)."""
        self._discard()
        exc_info = kwargs.get("exc_info")
        error = exc_info[1] if exc_info else None
        lines: list[str] = []
        if isinstance(error, RepoError):
            message = error.message
            lines.append(message)
            problems = getattr(error, "problems", None) or []
            if len(problems) > 1:
                lines += [f"- {problem}" for problem in problems]
            if error.hint:
                lines.append(f"hint: {error.hint}")
        elif isinstance(error, tornado.web.HTTPError) and error.log_message:
            message = error.log_message
            lines.append(message)
        else:
            message = self._reason
            lines.append(message)
        self.set_status(status_code, reason=reason_phrase(message))
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'Basic realm="ipydeps-repo"')
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("\n".join(lines) + "\n")
