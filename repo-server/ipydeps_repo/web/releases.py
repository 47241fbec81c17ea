"""``/api/v1/projects/<project>/<version>``: yank, unyank (PEP 592) and delete a release.

- ``POST .../<version>/yank`` yanks every file of the version (``{"reason": "..."}``
  in a JSON body, or ``?reason=``), ``DELETE .../<version>/yank`` unyanks; both need a
  token with the ``upload`` right.
- ``DELETE .../<version>`` deletes the version's files; it needs the ``force`` right
  (the same right that replaces a published file, as both destroy published bytes).

``?file=NAME`` (or ``"file"`` in the JSON body) limits any of them to one file (and the
optimized variant beside it). Replies are the JSON of ``ReleaseChange``. The token, its
right and its project scope are checked from the headers and the URL, before the body.
"""

from __future__ import annotations

from typing import Any, ClassVar

import tornado.ioloop
import tornado.web
from packaging.utils import canonicalize_name

from .. import jsonsafe
from ..errors import ValidationError
from ..store.releases import ReleaseChange
from ..store.store import Store
from .auth import SCOPE_FORCE, SCOPE_UPLOAD, TokenStore
from .base import BaseHandler
from .legacy_form import token_header


class _ReleaseHandler(BaseHandler):
    # The right each method needs, which is also the set of methods served.
    rights: ClassVar[dict[str, str]] = {}

    def initialize(self, store: Store, tokens: TokenStore) -> None:
        """Receive the store and the token store (no globals)."""
        self.store = store
        self.tokens = tokens

    def prepare(self) -> None:
        """Check the token, its right and its project scope before the body is read.

        Raises:
            AuthenticationError, PermissionDeniedError: the token may not do this here.
            ValidationError, TooLargeError: from the base (a body over 64 KiB).
        """
        right = self.rights.get(self.request.method or "")
        if right is None:
            raise tornado.web.HTTPError(405)
        project = canonicalize_name(self.path_args[0]) if self.path_args else None
        self.tokens.authenticate(
            token_header(self.request.headers.get("Authorization")), scope=right, project=project
        )
        super().prepare()

    def _option(self, name: str) -> str | None:
        """Return ``name`` from the JSON body, else from the query string.

        Raises:
            ValidationError: a body that is not a JSON object of strings.
        """
        body = self.body_bytes()
        if body:
            try:
                document: Any = jsonsafe.loads(body)
            except ValueError:
                document = None
            if not isinstance(document, dict):
                raise ValidationError("request body", ["it must be a JSON object"])
            value = document.get(name)
            if value is not None:
                if not isinstance(value, str):
                    raise ValidationError("request body", [f"{name!r} must be a string"])
                return value
        return self.get_query_argument(name, None)

    async def _run(self, change: Any) -> None:
        result: ReleaseChange = await tornado.ioloop.IOLoop.current().run_in_executor(None, change)
        self.write(result.to_json())


class YankHandler(_ReleaseHandler):
    """``POST`` yanks, ``DELETE`` unyanks."""

    rights: ClassVar[dict[str, str]] = {"POST": SCOPE_UPLOAD, "DELETE": SCOPE_UPLOAD}

    async def post(self, project: str, version: str) -> None:
        """Yank the version (or ``file``) with the optional ``reason``.

        Raises:
            ValidationError, NotFoundError: a bad version or body, an unknown release.
        """
        reason = self._option("reason") or ""
        filename = self._option("file")
        await self._run(
            lambda: self.store.set_yanked(
                project, version, yanked=True, reason=reason, filename=filename
            )
        )

    async def delete(self, project: str, version: str) -> None:
        """Unyank the version (or ``file``).

        Raises:
            ValidationError, NotFoundError: a bad version or body, an unknown release.
        """
        filename = self._option("file")
        await self._run(
            lambda: self.store.set_yanked(project, version, yanked=False, filename=filename)
        )


class ReleaseHandler(_ReleaseHandler):
    """``DELETE`` removes the version's files (or ``file``)."""

    rights: ClassVar[dict[str, str]] = {"DELETE": SCOPE_FORCE}

    async def delete(self, project: str, version: str) -> None:
        """Delete the files, their metadata, stored copies and optimized variants.

        Raises:
            ValidationError, NotFoundError: a bad version or body, an unknown release.
        """
        filename = self._option("file")
        await self._run(lambda: self.store.delete_files(project, version, filename=filename))
